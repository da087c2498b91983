import { api, attempt, notify } from './api.js';
import { badge, fill, h, row, table, time } from './dom.js';
import type { Page } from './page.js';

interface Endpoint {
  id: string;
  url: string;
  channels: string[];
  types: string[] | null;
  description: string | null;
  enabled: boolean;
  disabledReason: string | null;
  failingSince: string | null;
  circuit: 'closed' | 'open' | 'half-open';
}

interface Attempt {
  time: string;
  status: number | null;
  durationMs: number;
  responseBody: string | null;
  error: string | null;
}

interface Delivery {
  id: string;
  eventId: string;
  webhookId: string;
  status: 'pending' | 'delivered' | 'dead' | 'held';
  attemptCount: number;
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  attempts: Attempt[];
}

/**
 * Outbound: endpoints with health (failing since, breaker state), pause and resume (PATCH
 * `enabled`), secret rotation, replay from an event id and a bulk retry of dead deliveries; the
 * selected endpoint's delivery log with every attempt, and a resend per delivery.
 */
export const outboundPage: Page = {
  id: 'outbound',
  title: 'Outbound',
  mount(root) {
    const endpointsBox = h('div', { id: 'endpoints' });
    const deliveriesBox = h('div', { id: 'deliveries' });
    const secretBox = h('div', { id: 'secret', hidden: true, class: 'notice ok' });
    let selected: string | undefined;
    let statusFilter = '';

    const loadEndpoints = async () => {
      const r = await attempt('Listing endpoints', () => api<{ endpoints: Endpoint[] }>('GET', '/v1/endpoints'));
      if (!r) return;
      if (selected === undefined && r.endpoints[0]) selected = r.endpoints[0].id;
      fill(
        endpointsBox,
        table(
          ['Endpoint', 'Channels', 'State', 'Health', 'Breaker', 'Actions'],
          r.endpoints.map((e) =>
            row(
              [
                h('a', { href: '#outbound', class: 'endpoint-url', onclick: (ev: Event) => (ev.preventDefault(), select(e.id)) }, e.url),
                e.channels.join(', ') + (e.types ? ` (${e.types.join(', ')})` : ''),
                e.enabled ? badge('enabled', 'ok') : badge(e.disabledReason && e.disabledReason !== 'operator' ? `disabled: ${e.disabledReason}` : 'paused', 'warn'),
                e.failingSince ? h('span', { class: 'bad' }, 'failing since ', time(e.failingSince)) : badge('healthy', 'ok'),
                badge(e.circuit, e.circuit === 'closed' ? 'ok' : 'bad'),
                h(
                  'span',
                  { class: 'actions' },
                  h('button', { type: 'button', class: 'toggle', onclick: () => setEnabled(e, !e.enabled) }, e.enabled ? 'Pause' : 'Resume'),
                  h('button', { type: 'button', class: 'rotate', onclick: () => rotate(e) }, 'Rotate secret'),
                  h('button', { type: 'button', class: 'retry-dead', onclick: () => retryDead(e) }, 'Retry dead'),
                ),
              ],
              { 'data-endpoint': e.id, class: e.id === selected ? 'selected' : '' },
            ),
          ),
          'No endpoints: create one with POST /v1/endpoints.',
        ),
      );
      await loadDeliveries();
    };

    const select = (id: string) => {
      selected = id;
      void loadEndpoints();
    };

    const setEnabled = async (e: Endpoint, enabled: boolean) => {
      if (await attempt(enabled ? 'Resuming' : 'Pausing', () => api('PATCH', `/v1/endpoints/${encodeURIComponent(e.id)}`, { enabled }))) {
        notify(`${e.url} ${enabled ? 'resumed' : 'paused'}`);
      }
      await loadEndpoints();
    };

    const rotate = async (e: Endpoint) => {
      if (!confirm(`Rotate the signing secret of ${e.url}? The old one keeps working for a while.`)) return;
      const r = await attempt('Rotating the secret', () =>
        api<{ secret: string; previousSecretExpiresAt: string | null }>('POST', `/v1/endpoints/${encodeURIComponent(e.id)}/rotate-secret`),
      );
      if (!r) return;
      // Shown once: Herald never shows a secret again.
      fill(secretBox, 'New secret for ', e.url, ' (shown once): ', h('code', { id: 'new-secret' }, r.secret), r.previousSecretExpiresAt ? ` · the old one works until ${new Date(r.previousSecretExpiresAt).toLocaleString()}` : '');
      secretBox.hidden = false;
      await loadEndpoints();
    };

    const retryDead = async (e: Endpoint) => {
      const r = await attempt('Retrying dead deliveries', () =>
        api<{ retried: number; more: boolean }>('POST', `/v1/endpoints/${encodeURIComponent(e.id)}/retry-dead`),
      );
      if (r) notify(`${r.retried} dead deliveries sent again${r.more ? ' (more left: retry again)' : ''}`);
      selected = e.id;
      await loadEndpoints();
    };

    const resend = async (d: Delivery) => {
      if (await attempt('Resending', () => api('POST', `/v1/deliveries/${encodeURIComponent(d.id)}/retry`))) notify(`${d.id} queued again`);
      await loadDeliveries();
    };

    const replayFrom = h('input', { id: 'replay-after', placeholder: 'event id, or 0 for all the log holds', size: 34 });
    const replay = async () => {
      if (!selected) return;
      const r = await attempt('Replaying', () =>
        api<{ queued: number; next: string | null }>('POST', `/v1/endpoints/${encodeURIComponent(selected!)}/replay`, { after: replayFrom.value.trim() || '0' }),
      );
      if (r) notify(`${r.queued} deliveries queued${r.next ? `; continue from ${r.next}` : ''}`);
      await loadDeliveries();
    };

    const loadDeliveries = async () => {
      if (!selected) {
        fill(deliveriesBox);
        return;
      }
      const id = selected;
      const q = statusFilter ? `?status=${statusFilter}` : '';
      const r = await attempt('Listing deliveries', () => api<{ deliveries: Delivery[] }>('GET', `/v1/endpoints/${encodeURIComponent(id)}/deliveries${q}`));
      if (!r) return;
      const filter = h(
        'select',
        { id: 'delivery-status', 'aria-label': 'status', onchange: (ev: Event) => ((statusFilter = (ev.target as HTMLSelectElement).value), void loadDeliveries()) },
        ...['', 'pending', 'delivered', 'dead', 'held'].map((s) => h('option', { value: s, selected: s === statusFilter }, s || 'any status')),
      );
      fill(
        deliveriesBox,
        h('div', { class: 'toolbar' }, h('h2', {}, 'Deliveries'), filter, h('button', { type: 'button', onclick: () => void loadDeliveries() }, 'Refresh'), h('span', { class: 'spacer' }), replayFrom, h('button', { type: 'button', id: 'replay', onclick: () => void replay() }, 'Replay from here')),
        table(
          ['Delivery', 'Event', 'Status', 'Attempts', 'Created', ''],
          r.deliveries.flatMap((d) => {
            const attempts = h(
              'tr',
              { class: 'attempts', hidden: true },
              h(
                'td',
                { colspan: 6 },
                table(
                  ['Time', 'Status', 'Duration', 'Response body', 'Error'],
                  d.attempts.map((a) =>
                    row([time(a.time), a.status === null ? '—' : badge(String(a.status), a.status < 300 ? 'ok' : 'bad'), `${a.durationMs} ms`, h('code', { class: 'response' }, a.responseBody ?? ''), a.error ?? '']),
                  ),
                  'No attempt yet.',
                ),
              ),
            );
            const main = row(
              [
                h('a', { href: '#outbound', onclick: (ev: Event) => (ev.preventDefault(), (attempts.hidden = !attempts.hidden)) }, d.id),
                h('code', {}, d.eventId),
                badge(d.status, d.status === 'delivered' ? 'ok' : d.status === 'dead' ? 'bad' : 'warn'),
                `${d.attemptCount}${d.lastStatus !== null ? ` (last ${d.lastStatus})` : ''}`,
                time(d.createdAt),
                h('button', { type: 'button', class: 'resend', onclick: () => void resend(d) }, 'Resend'),
              ],
              { class: 'delivery', 'data-delivery': d.id, 'data-status': d.status },
            );
            return [main, attempts];
          }),
          'No deliveries yet.',
        ),
      );
    };

    fill(root, secretBox, h('section', { class: 'card' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Endpoints'), h('button', { type: 'button', onclick: () => void loadEndpoints() }, 'Refresh')), endpointsBox), h('section', { class: 'card' }, deliveriesBox));
    void loadEndpoints();
    return () => {};
  },
};
