import { api, ApiError, apiKey, setApiKey, whenAuthFails } from './api.js';
import { channelsPage } from './channels.js';
import { fill, h } from './dom.js';
import { inboundPage } from './inbound.js';
import { livePage } from './live.js';
import { nodesPage } from './nodes.js';
import { outboundPage } from './outbound.js';
import type { Page } from './page.js';

const PAGES: readonly Page[] = [livePage, outboundPage, inboundPage, channelsPage, nodesPage];

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const signOut = document.getElementById('sign-out') as HTMLButtonElement;
let unmount: (() => void) | undefined;
/** While the first call is out, its refusal is handled by `start` itself. */
let probing = false;

/**
 * The console opens when the operator APIs answer this browser: in dev mode from loopback with
 * no key, otherwise with an admin API key. One operator API (`GET /v1/channels`) is asked first;
 * a refusal for credentials shows the key form, any other refusal (LOOPBACK_ONLY) says why.
 */
async function start(): Promise<void> {
  probing = true;
  try {
    await api('GET', '/v1/channels?limit=1');
  } catch (err) {
    if (err instanceof ApiError) return gate(err);
    throw err;
  } finally {
    probing = false;
  }
  signOut.hidden = apiKey() === undefined;
  nav.hidden = false;
  window.addEventListener('hashchange', route);
  route();
}

function route(): void {
  const id = location.hash.slice(1) || PAGES[0]!.id;
  const page = PAGES.find((p) => p.id === id) ?? PAGES[0]!;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.getAttribute('href') === `#${page.id}`);
  document.title = `${page.title} · Herald console`;
  unmount?.();
  document.getElementById('notice')!.hidden = true;
  main.replaceChildren();
  unmount = page.mount(main);
}

function gate(err: ApiError): void {
  unmount?.();
  unmount = undefined;
  nav.hidden = true;
  signOut.hidden = true;
  const needsKey = err.status === 401 || err.code === 'FORBIDDEN' || err.code === 'API_KEY_INVALID';
  if (!needsKey) {
    fill(main, h('section', { class: 'card gate' }, h('h2', {}, 'The console is not open to this browser'), h('p', { id: 'gate-reason' }, `${err.code}: ${err.message}`)));
    return;
  }
  const input = h('input', { id: 'api-key', type: 'password', autocomplete: 'off', placeholder: 'admin API key', size: 40, required: true });
  const why =
    apiKey() === undefined
      ? 'This Herald has credentials configured: enter an API key with the "admin" scope. It is kept in this tab only (sessionStorage) and sent as an Authorization header.'
      : err.code === 'FORBIDDEN'
        ? 'That key does not have the "admin" scope.'
        : `That key was refused (${err.code}).`;
  setApiKey(undefined);
  fill(
    main,
    h(
      'form',
      {
        class: 'card gate',
        id: 'gate',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          setApiKey(input.value.trim());
          void start();
        },
      },
      h('h2', {}, 'Admin API key'),
      h('p', { id: 'gate-reason' }, why),
      input,
      h('button', { type: 'submit' }, 'Open the console'),
    ),
  );
  input.focus();
}

fill(nav, ...PAGES.map((p) => h('a', { href: `#${p.id}`, id: `nav-${p.id}` }, p.title)));
signOut.addEventListener('click', () => {
  setApiKey(undefined);
  location.reload();
});
whenAuthFails((err) => probing || gate(err));
void start();
