import { api, ApiError, metricsText, metricSum } from './api.js';
import { badge, fill, h, row, table, time } from './dom.js';
import { every, type Page } from './page.js';

/** milliseconds between two refreshes. */
const NODES_REFRESH_MS = 2_000;

/** One node as `GET /v1/nodes` lists it (its last heartbeat; this node's made now). */
interface NodeView {
  id: string;
  self: boolean;
  host: string;
  pid: number;
  startedAt: string;
  lastSeenAt: string;
  connections: number;
  connectionsByTransport: Record<string, number>;
  subscriptions: number;
  published: number;
  delivered: number;
  lag: { headSeq: number; dispatchedSeq: number; events: number };
}

/**
 * Nodes: every node of the deployment (the nodes sharing this one's backend, from their
 * heartbeats in `GET /v1/nodes`) with its connections by transport and how far its delivery is
 * behind the log; the node that answers this page is marked, with its readiness from `/readyz`.
 */
export const nodesPage: Page = {
  id: 'nodes',
  title: 'Nodes',
  mount(root) {
    const box = h('div', { id: 'nodes' });
    fill(root, h('section', { class: 'card' }, h('h2', {}, 'Nodes'), box));
    return every(NODES_REFRESH_MS, async () => {
      let ready: { status: string; checks?: Record<string, string> };
      try {
        ready = await api('GET', '/readyz');
      } catch (err) {
        ready = { status: err instanceof ApiError ? err.code : 'unreachable' };
      }
      let listed: { nodes: NodeView[]; expirySeconds: number } | undefined;
      let listError = '';
      try {
        listed = await api('GET', '/v1/nodes');
      } catch (err) {
        listError = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
      }
      let text = '';
      try {
        text = await metricsText();
      } catch {
        /* /metrics closed to this key */
      }
      const rows = (listed?.nodes ?? []).map((n) =>
        row(
          [
            h('span', { class: 'node-id', title: n.id }, `${n.host}:${n.pid}`, n.self && ' ', n.self && badge('this node', 'self')),
            n.self ? badge(ready.status, ready.status === 'ready' ? 'ok' : 'bad') : badge('live', 'ok'),
            h('span', { class: 'connections' }, String(n.connections)),
            Object.entries(n.connectionsByTransport)
              .filter(([, c]) => c > 0)
              .map(([t, c]) => `${t} ${c}`)
              .join(', ') || '—',
            String(n.subscriptions),
            h('span', { class: n.lag.events > 0 ? 'lag warn' : 'lag' }, n.lag.events === 0 ? 'caught up' : `${n.lag.events} events behind`),
            String(n.published),
            String(n.delivered),
            time(n.startedAt),
            time(n.lastSeenAt),
          ],
          { class: n.self ? 'node self' : 'node', 'data-node': n.id },
        ),
      );
      fill(
        box,
        table(
          ['Node', 'Ready', 'Connections', 'By transport', 'Subscriptions', 'Lag', 'Events published', 'Events delivered', 'Started', 'Last seen'],
          rows,
          listError ? `Nodes not listed: ${listError}` : 'No node listed.',
        ),
        h(
          'p',
          { class: 'muted' },
          [
            listed ? `A node that stops is gone from this list within ${listed.expirySeconds} s.` : '',
            `Webhook deliveries waiting: ${metricSum(text, 'herald_webhook_deliveries_waiting') ?? 0}.`,
            ...(ready.checks ? Object.entries(ready.checks).map(([k, v]) => `${k}: ${v}`) : []),
          ]
            .filter(Boolean)
            .join(' · '),
        ),
      );
    });
  },
};
