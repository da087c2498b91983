import { api, attempt, notify } from './api.js';
import { badge, fill, h, jsonView, row, table, time } from './dom.js';
import type { Page } from './page.js';

interface Source {
  name: string;
  provider: string;
  channel: string;
  path: string;
}

interface Receipt {
  id: string;
  status: 'accepted' | 'duplicate' | 'replayed' | 'rejected';
  receivedAt: string;
  providerEventId?: string;
  type?: string;
  eventId?: string;
  replayOf?: string;
  error?: { code: string; message: string };
  headers: Record<string, string>;
  payload?: unknown;
}

const KIND: Record<Receipt['status'], string> = { accepted: 'ok', duplicate: 'warn', replayed: 'ok', rejected: 'bad' };

/**
 * Inbound: the configured sources, and one source's received log (accepted, duplicate,
 * replayed, rejected with its reason), a payload and header viewer, and replay of an accepted
 * arrival (it is published again as a new event).
 */
export const inboundPage: Page = {
  id: 'inbound',
  title: 'Inbound',
  mount(root) {
    const sourcesBox = h('div', { id: 'sources' });
    const logBox = h('div', { id: 'received' });
    const viewer = h('div', { id: 'receipt-detail', class: 'detail' }, h('p', { class: 'muted' }, 'Click an arrival to see its payload.'));
    let selected: string | undefined;
    let statusFilter = '';

    const loadSources = async () => {
      const r = await attempt('Listing sources', () => api<{ sources: Source[] }>('GET', '/v1/webhooks'));
      if (!r) return;
      selected ??= r.sources[0]?.name;
      fill(
        sourcesBox,
        table(
          ['Source', 'Provider', 'Channel', 'Endpoint'],
          r.sources.map((s) =>
            row(
              [h('a', { href: '#inbound', class: 'source', onclick: (ev: Event) => (ev.preventDefault(), (selected = s.name), void loadSources()) }, s.name), s.provider, h('code', {}, s.channel), h('code', {}, `POST ${s.path}`)],
              { class: s.name === selected ? 'selected' : '', 'data-source': s.name },
            ),
          ),
          'No sources configured (the `sources` key of the config).',
        ),
      );
      await loadLog();
    };

    const replay = async (source: string, r: Receipt) => {
      const out = await attempt('Replaying', () =>
        api<{ id: string; receipt: string }>('POST', `/v1/webhooks/${encodeURIComponent(source)}/received/${encodeURIComponent(r.id)}/replay`),
      );
      if (out) notify(`Arrival ${r.id} published again as ${out.id}`);
      await loadLog();
    };

    const show = (source: string, r: Receipt, tr: HTMLElement) => {
      for (const x of logBox.querySelectorAll('tr.selected')) x.classList.remove('selected');
      tr.classList.add('selected');
      fill(
        viewer,
        h('div', { class: 'toolbar' }, h('h3', {}, `Arrival ${r.id} `, badge(r.status, KIND[r.status])), r.status === 'accepted' || r.status === 'replayed' ? h('button', { type: 'button', id: 'replay-receipt', onclick: () => void replay(source, r) }, 'Replay') : null),
        r.error ? h('p', { class: 'bad' }, `${r.error.code}: ${r.error.message}`) : null,
        r.eventId ? h('p', {}, 'Event ', h('code', {}, r.eventId)) : null,
        h('h4', {}, 'Payload'),
        r.payload === undefined ? h('p', { class: 'muted' }, 'Kept only for accepted arrivals.') : jsonView(r.payload),
        h('h4', {}, 'Headers'),
        jsonView(r.headers),
      );
    };

    const loadLog = async () => {
      if (!selected) return fill(logBox);
      const source = selected;
      const q = statusFilter ? `?status=${statusFilter}` : '';
      const r = await attempt('Reading the inbound log', () => api<{ received: Receipt[] }>('GET', `/v1/webhooks/${encodeURIComponent(source)}/received${q}`));
      if (!r) return;
      const filter = h(
        'select',
        { id: 'receipt-status', 'aria-label': 'status', onchange: (ev: Event) => ((statusFilter = (ev.target as HTMLSelectElement).value), void loadLog()) },
        ...['', 'accepted', 'duplicate', 'replayed', 'rejected'].map((s) => h('option', { value: s, selected: s === statusFilter }, s || 'any status')),
      );
      fill(
        logBox,
        h('div', { class: 'toolbar' }, h('h2', {}, `Received by ${source}`), filter, h('button', { type: 'button', onclick: () => void loadLog() }, 'Refresh')),
        table(
          ['#', 'Received', 'Status', 'Type', 'Provider id', 'Reason'],
          r.received.map((rc) => {
            const tr = row([rc.id, time(rc.receivedAt), badge(rc.status, KIND[rc.status]), rc.type ?? '', rc.providerEventId ?? '', rc.error ? `${rc.error.code}: ${rc.error.message}` : ''], {
              class: 'receipt',
              'data-receipt': rc.id,
              'data-status': rc.status,
            });
            tr.addEventListener('click', () => show(source, rc, tr));
            return tr;
          }),
          'Nothing received yet.',
        ),
      );
    };

    fill(root, h('section', { class: 'card' }, h('h2', {}, 'Sources'), sourcesBox), h('div', { class: 'split' }, h('section', { class: 'card scroll' }, logBox), viewer));
    void loadSources();
    return () => {};
  },
};
