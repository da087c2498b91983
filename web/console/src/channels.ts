import { api, ApiError, attempt, notify } from './api.js';
import { formatRate } from './chart.js';
import { badge, fill, h, row, table, time } from './dom.js';
import { every, type Page } from './page.js';

interface ChannelRow {
  channel: string;
  pattern: boolean;
  subscribers: number;
  eventsPerSecond: number;
  events: number;
  lastEventAt: string | null;
}

interface Subscriber {
  id: string;
  transport: string;
  identity: string | null;
  address: string;
  connectedAt: string;
  patterns: string[];
}

interface Presence {
  members: { identity: string; connections: number }[];
  anonymous?: number;
}

/** milliseconds between two refreshes of the channel list. */
const CHANNELS_REFRESH_MS = 2_000;

/**
 * Channels: the channels and patterns of this node with subscribers or recent events, their
 * subscriber counts and event rates; one channel's subscribers (transport, identity, address,
 * connected since) with a disconnect button, and its presence where the channel tracks it.
 */
export const channelsPage: Page = {
  id: 'channels',
  title: 'Channels',
  mount(root) {
    const listBox = h('div', { id: 'channels' });
    const subsBox = h('div', { id: 'subscribers', class: 'detail' }, h('p', { class: 'muted' }, 'Click a channel to see its subscribers.'));
    let selected: string | undefined;

    const loadList = async () => {
      const r = await attempt('Listing channels', () => api<{ channels: ChannelRow[]; connections: number }>('GET', '/v1/channels?limit=200'));
      if (!r) return;
      fill(
        listBox,
        h('p', { class: 'muted' }, `${r.connections} connections to this node`),
        table(
          ['Channel', 'Subscribers', 'Events/s', 'Events', 'Last event'],
          r.channels.map((c) =>
            row(
              [
                h('span', {}, h('a', { href: '#channels', class: 'channel', onclick: (ev: Event) => (ev.preventDefault(), (selected = c.channel), void loadSubscribers()) }, c.channel), c.pattern ? ' ' : '', c.pattern ? badge('pattern', 'muted') : null),
                h('span', { class: 'subscriber-count' }, String(c.subscribers)),
                formatRate(c.eventsPerSecond),
                String(c.events),
                time(c.lastEventAt),
              ],
              { 'data-channel': c.channel, class: c.channel === selected ? 'selected' : '' },
            ),
          ),
          'No subscribers and no events yet.',
        ),
      );
    };

    const disconnect = async (s: Subscriber) => {
      if (await attempt('Disconnecting', () => api('DELETE', `/v1/connections/${encodeURIComponent(s.id)}`))) {
        notify(`${s.id} (${s.identity ?? 'anonymous'}, ${s.address}) disconnected`);
      }
      await loadSubscribers();
      await loadList();
    };

    const loadSubscribers = async () => {
      if (!selected) return;
      const ch = selected;
      const r = await attempt('Listing subscribers', () => api<{ subscribers: Subscriber[]; eventsPerSecond: number }>('GET', `/v1/channels/${encodeURIComponent(ch)}/subscribers`));
      if (!r) return;
      let presence: HTMLElement | null = null;
      if (!ch.includes('*') && !ch.includes('>')) {
        try {
          const p = await api<Presence>('GET', `/v1/channels/${encodeURIComponent(ch)}/presence`);
          presence = h(
            'div',
            { id: 'presence' },
            h('h4', {}, 'Presence'),
            p.members.length === 0 ? h('p', { class: 'muted' }, 'Nobody identified is here.') : h('ul', {}, ...p.members.map((m) => h('li', {}, m.identity, h('span', { class: 'muted' }, ` · ${m.connections} connection(s)`)))),
            p.anonymous ? h('p', { class: 'muted' }, `${p.anonymous} anonymous`) : null,
          );
        } catch (err) {
          const why = err instanceof ApiError && err.code === 'PRESENCE_NOT_ENABLED' ? 'Presence is not tracked for this channel (presence.channels).' : String((err as Error).message);
          presence = h('div', { id: 'presence' }, h('h4', {}, 'Presence'), h('p', { class: 'muted' }, why));
        }
      }
      fill(
        subsBox,
        h('h3', {}, `Subscribers of ${ch}`),
        h('p', { class: 'muted' }, `${formatRate(r.eventsPerSecond)} events/s`),
        table(
          ['Connection', 'Transport', 'Identity', 'Address', 'Connected since', 'Patterns', ''],
          r.subscribers.map((s) =>
            row(
              [h('code', {}, s.id), badge(s.transport, 'muted'), s.identity ?? h('span', { class: 'muted' }, 'anonymous'), s.address, time(s.connectedAt), s.patterns.join(', '), h('button', { type: 'button', class: 'disconnect', onclick: () => void disconnect(s) }, 'Disconnect')],
              { class: 'subscriber', 'data-connection': s.id },
            ),
          ),
          'No subscribers on this node.',
        ),
        presence,
      );
    };

    fill(root, h('div', { class: 'split wide-right' }, h('section', { class: 'card scroll' }, h('h2', {}, 'Channels'), listBox), subsBox));
    return every(CHANNELS_REFRESH_MS, loadList);
  },
};
