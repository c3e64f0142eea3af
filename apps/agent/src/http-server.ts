import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthSource {
  health(): { status: number; body: Record<string, unknown> };
  ready(): boolean;
}

/** /healthz (liveness + mode), /readyz (set up and consuming), /metrics (Prometheus). */
export function startHttpServer(host: string, port: number, registry: Registry, src: HealthSource): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/healthz') {
      const h = src.health();
      return json(h.status, h.body);
    }
    if (path === '/readyz') return json(src.ready() ? 200 : 503, { ready: src.ready() });
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => json(500, { error: 'metrics unavailable' }),
      );
      return;
    }
    json(404, { error: 'not found' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      const p = typeof addr === 'object' && addr ? addr.port : port;
      resolve({ server, url: `http://${host}:${p}` });
    });
  });
}
