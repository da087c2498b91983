import { api, ApiError, metricByLabel, metricsText, metricSum } from './api.js';
import { badge, fill, h, row, table } from './dom.js';
import { every, type Page } from './page.js';

/** milliseconds between two refreshes. */
const NODES_REFRESH_MS = 2_000;

/**
 * Nodes: the node that answers this page, from `/readyz` and `/metrics` (readiness of each part,
 * connections by transport, outbound work waiting). Herald keeps no list of the other nodes of a
 * cluster yet, so each node is seen by opening its own console.
 */
export const nodesPage: Page = {
  id: 'nodes',
  title: 'Nodes',
  mount(root) {
    const box = h('div', { id: 'nodes' });
    fill(root, h('section', { class: 'card' }, h('h2', {}, 'This node'), box));
    return every(NODES_REFRESH_MS, async () => {
      let ready: { status: string; checks?: Record<string, string> };
      try {
        ready = await api('GET', '/readyz');
      } catch (err) {
        ready = { status: err instanceof ApiError ? err.code : 'unreachable' };
      }
      let text = '';
      try {
        text = await metricsText();
      } catch {
        /* /metrics closed to this key */
      }
      const conns = metricByLabel(text, 'herald_connections', 'transport');
      const total = Object.values(conns).reduce((a, b) => a + b, 0);
      fill(
        box,
        table(
          ['Node', 'Ready', 'Connections', 'By transport', 'Events published', 'Webhook deliveries waiting'],
          [
            row(
              [
                location.host,
                badge(ready.status, ready.status === 'ready' ? 'ok' : 'bad'),
                h('span', { id: 'node-connections' }, String(total)),
                Object.entries(conns).map(([t, n]) => `${t} ${n}`).join(', '),
                String(metricSum(text, 'herald_events_published_total') ?? 0),
                String(metricSum(text, 'herald_webhook_deliveries_waiting') ?? 0),
              ],
              { class: 'node' },
            ),
          ],
        ),
        ready.checks ? h('p', { class: 'muted' }, Object.entries(ready.checks).map(([k, v]) => `${k}: ${v}`).join(' · ')) : null,
      );
    });
  },
};
