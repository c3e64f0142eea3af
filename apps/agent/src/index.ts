export { Agent, type AgentMode, type AgentHooks } from './agent.js';
export { resolveConfig, agentConfigSchema, ENV_OVERRIDES, type AgentConfig } from './config.js';
