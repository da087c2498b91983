import { connect, type HeraldClient, type HeraldEvent } from '../../../packages/client/src/index.js';
import { apiKey, metricsText, metricSum, notify } from './api.js';
import { RateChart } from './chart.js';
import { fill, h, jsonView, time } from './dom.js';
import { every, type Page } from './page.js';

/** Events kept in the list; older ones fall off the bottom. */
const LIVE_MAX_EVENTS = 500;
/** milliseconds between two samples of `/metrics` for the rate chart. */
const RATE_SAMPLE_MS = 1_000;

/**
 * Live: tails a channel pattern through the client SDK over SSE (the key goes in the
 * Authorization header of a fetch stream, never in the URL), with pause, type and text filters,
 * and each event's JSON on click. The chart is events published (in) and written to subscribers
 * (out) per second on this node, from `/metrics`.
 */
export const livePage: Page = {
  id: 'live',
  title: 'Live',
  mount(root) {
    const events: HeraldEvent[] = [];
    let held: HeraldEvent[] = [];
    let paused = false;
    let client: HeraldClient | undefined;

    const pattern = h('input', { id: 'live-pattern', value: '>', size: 30, 'aria-label': 'channel pattern' });
    const typeFilter = h('input', { id: 'live-type', placeholder: 'type', size: 16, 'aria-label': 'filter by type' });
    const textFilter = h('input', { id: 'live-text', placeholder: 'text in channel or data', size: 24, 'aria-label': 'filter by text' });
    const status = h('span', { id: 'live-status', class: 'status' }, 'connecting');
    const pause = h('button', { id: 'live-pause', type: 'button' }, 'Pause');
    const count = h('span', { id: 'live-count', class: 'muted' });
    const list = h('tbody', { id: 'live-events' });
    const detail = h('div', { id: 'live-detail', class: 'detail' }, h('p', { class: 'muted' }, 'Click an event to see its JSON.'));
    const chart = new RateChart([
      { name: 'in', cls: 'in' },
      { name: 'out', cls: 'out' },
    ]);

    const matches = (e: HeraldEvent) => {
      const type = typeFilter.value.trim();
      const text = textFilter.value.trim().toLowerCase();
      if (type !== '' && e.type !== type) return false;
      if (text === '') return true;
      return `${e.channel} ${JSON.stringify(e.data)}`.toLowerCase().includes(text);
    };
    const rowOf = (e: HeraldEvent) => {
      const tr = h(
        'tr',
        { class: 'event', 'data-id': e.id, onclick: () => select(e, tr) },
        h('td', {}, time(e.time)),
        h('td', { class: 'channel' }, e.channel),
        h('td', { class: 'type' }, e.type ?? ''),
        h('td', { class: 'data' }, preview(e.data)),
      );
      return tr;
    };
    const select = (e: HeraldEvent, tr: HTMLElement) => {
      for (const r of list.querySelectorAll('tr.selected')) r.classList.remove('selected');
      tr.classList.add('selected');
      fill(detail, h('h3', {}, `Event ${e.id}`), jsonView({ id: e.id, channel: e.channel, type: e.type, data: e.data, time: e.time }));
    };
    const redraw = () => {
      fill(list, ...events.filter(matches).map(rowOf));
      count.textContent = `${events.length} events${held.length > 0 ? `, ${held.length} held while paused` : ''}`;
    };
    const add = (e: HeraldEvent) => {
      if (paused) {
        held.push(e);
        if (held.length > LIVE_MAX_EVENTS) held.shift();
        count.textContent = `${events.length} events, ${held.length} held while paused`;
        return;
      }
      events.unshift(e);
      if (events.length > LIVE_MAX_EVENTS) events.pop();
      if (matches(e)) {
        list.prepend(rowOf(e));
        while (list.children.length > LIVE_MAX_EVENTS) list.lastElementChild?.remove();
      }
      count.textContent = `${events.length} events`;
    };

    const tail = () => {
      client?.close();
      events.length = 0;
      held = [];
      redraw();
      const key = apiKey();
      client = connect({
        url: location.origin,
        transport: 'sse',
        shareAcrossTabs: false,
        getToken: key === undefined ? undefined : () => key,
        onStatus: (s) => {
          status.textContent = s;
          status.className = `status ${s}`;
        },
        onError: (err) => notify(`Live stream: ${err.code}: ${err.message}`, 'error'),
      });
      client.subscribe(pattern.value.trim() || '>', add);
    };

    pause.addEventListener('click', () => {
      paused = !paused;
      pause.textContent = paused ? 'Resume' : 'Pause';
      pause.classList.toggle('active', paused);
      if (!paused) {
        for (const e of held) add(e);
        held = [];
      }
    });
    const form = h(
      'form',
      { class: 'toolbar', onsubmit: (ev: Event) => (ev.preventDefault(), tail()) },
      h('label', {}, 'Channel ', pattern),
      h('button', { type: 'submit', id: 'live-tail' }, 'Tail'),
      pause,
      typeFilter,
      textFilter,
      status,
      count,
    );
    typeFilter.addEventListener('input', redraw);
    textFilter.addEventListener('input', redraw);

    fill(
      root,
      h('section', { class: 'card' }, h('h2', {}, 'Events per second'), chart.el),
      form,
      h(
        'div',
        { class: 'split' },
        h('div', { class: 'scroll' }, h('table', { class: 'events' }, h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Channel'), h('th', {}, 'Type'), h('th', {}, 'Data'))), list)),
        detail,
      ),
    );
    tail();

    let last: { at: number; published: number; delivered: number } | undefined;
    const stopRates = every(RATE_SAMPLE_MS, async () => {
      let text: string;
      try {
        text = await metricsText();
      } catch {
        return; // /metrics may be closed to this key; the tail still works
      }
      const now = performance.now();
      const published = metricSum(text, 'herald_events_published_total') ?? 0;
      const delivered = metricSum(text, 'herald_events_delivered_total') ?? 0;
      if (last) {
        const s = (now - last.at) / 1000;
        chart.push([(published - last.published) / s, (delivered - last.delivered) / s]);
      }
      last = { at: now, published, delivered };
    });
    return () => {
      stopRates();
      client?.close();
    };
  },
};

/** One line of an event's data, cut to fit a table cell. */
function preview(data: unknown): string {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}
