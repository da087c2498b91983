import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { COMMANDS } from '../../src/cli/commands.js';
import { runCli } from '../helpers/cli.js';
import { startInProcess, waitFor } from '../helpers/herald.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const ADMIN_KEY = 'cli-test-admin-key-0123456789';
const ORDERS_KEY = 'cli-test-orders-key-0123456789';

let h: Awaited<ReturnType<typeof startInProcess>>;
let receiver: Receiver;
before(async () => {
  receiver = await startReceiver();
  h = await startInProcess({
    auth: {
      apiKeys: [
        { key: ADMIN_KEY, scopes: ['admin'] },
        { key: ORDERS_KEY, scopes: ['publish:orders.>', 'subscribe:orders.>'] },
      ],
    },
    outbound: { allowPrivateTargets: true },
  });
});
after(async () => {
  await h.close();
  await receiver.close();
});

const as = (key: string) => ['--url', h.url, '--key', key];

test('every command, and herald help, prints its usage with --help and exits 0', async () => {
  const help = await runCli(['help']);
  assert.equal(help.code, 0);
  for (const name of ['serve', ...COMMANDS.map((c) => c.name), 'help']) {
    assert.match(help.stdout, new RegExp(`^  ${name} `, 'm'), `herald help lists ${name}`);
    const r = await runCli([name, '--help']);
    assert.equal(r.code, 0, `${name} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: herald (\\[serve\\]|${name})`), `${name} --help prints its usage`);
    assert.equal((await runCli(['help', name])).stdout, r.stdout, `herald help ${name} is ${name} --help`);
  }
  assert.equal((await runCli(['--help'])).stdout, help.stdout);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command frobnicate/);
});

test('publish prints the id; events prints it back, as lines or JSON lines, after --since', async () => {
  const first = await runCli(['publish', 'orders.eu', '{"id":7}', '--type', 'order.paid', ...as(ORDERS_KEY)]);
  assert.equal(first.code, 0, first.stderr);
  const id = first.stdout.trim();
  const text = await runCli(['publish', 'orders.eu', '42', '--text', ...as(ORDERS_KEY)]);
  const piped = await runCli(['publish', 'orders.eu', '-', ...as(ORDERS_KEY)], {}, 'from stdin\n');
  assert.equal(piped.code, 0, piped.stderr);

  const lines = await runCli(['events', 'orders.>', ...as(ADMIN_KEY)]);
  assert.equal(lines.code, 0, lines.stderr);
  assert.deepEqual(lines.stdout.trim().split('\n'), [
    `${id} orders.eu order.paid {"id":7}`,
    `${text.stdout.trim()} orders.eu message "42"`,
    `${piped.stdout.trim()} orders.eu message "from stdin"`,
  ]);
  const json = await runCli(['events', 'orders.eu', '--since', id, '--limit', '1', '--json', ...as(ADMIN_KEY)]);
  const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; data: unknown });
  assert.deepEqual(events.map((e) => [e.id, e.data]), [[text.stdout.trim(), '42']]);
});

test('an idempotency key makes a repeated publish print the first id', async () => {
  const args = ['publish', 'orders.us', '1', '--idempotency-key', 'cli-once', ...as(ORDERS_KEY)];
  const a = await runCli(args);
  const b = await runCli(args);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.stdout, a.stdout);
});

test('HERALD_URL and HERALD_API_KEY stand in for --url and --key', async () => {
  const r = await runCli(['publish', 'orders.env', 'true'], { HERALD_URL: h.url, HERALD_API_KEY: ORDERS_KEY });
  assert.equal(r.code, 0, r.stderr);
  const history = await runCli(['events', 'orders.env', '--json'], { HERALD_URL: h.url, HERALD_API_KEY: ADMIN_KEY });
  assert.equal(JSON.parse(history.stdout).id, r.stdout.trim());
});

test('a refusal prints the registry code and message and exits 1; usage mistakes exit 2; no Herald exits 3', async () => {
  const anonymous = await runCli(['publish', 'orders.eu', '1', '--url', h.url]);
  assert.equal(anonymous.code, 1);
  assert.match(anonymous.stderr, /^herald publish: UNAUTHORIZED: .+ \(HTTP 401\)$/m);
  const forbidden = await runCli(['publish', 'billing', '1', ...as(ORDERS_KEY)]);
  assert.equal(forbidden.code, 1);
  assert.match(forbidden.stderr, /PUBLISH_FORBIDDEN: .+ \(HTTP 403\)/);
  const pattern = await runCli(['publish', 'orders.*', '1', ...as(ADMIN_KEY)]);
  assert.match(pattern.stderr, /CHANNEL_IS_PATTERN/);
  assert.equal(pattern.code, 1);

  const missing = await runCli(['publish', 'orders.eu', ...as(ADMIN_KEY)]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /usage: herald publish/);
  const badOption = await runCli(['events', 'orders', '--limit', 'lots', ...as(ADMIN_KEY)]);
  assert.equal(badOption.code, 2);
  assert.equal((await runCli(['events', 'orders', '--url', 'not a url'])).code, 2);

  // A port that was just free: nothing listens there.
  const closed = await startInProcess({});
  await closed.close();
  const gone = await runCli(['events', 'orders', '--url', closed.url]);
  assert.equal(gone.code, 3);
  assert.match(gone.stderr, /cannot reach Herald at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
});

test('endpoints: create, list, the delivery log, and a retry that sends the delivery again', async () => {
  const created = await runCli(['endpoints', 'create', `${receiver.url}/hook`, '--channel', 'orders.cli', '--type', 'order.paid', ...as(ADMIN_KEY)]);
  assert.equal(created.code, 0, created.stderr);
  const endpoint = JSON.parse(created.stdout) as { id: string; secret: string; types: string[] };
  assert.match(endpoint.secret, /^whsec_/);
  assert.deepEqual(endpoint.types, ['order.paid']);

  const list = await runCli(['endpoints', 'list', ...as(ADMIN_KEY)]);
  assert.match(list.stdout, new RegExp(`^${endpoint.id} enabled ${receiver.url}/hook orders.cli$`, 'm'));
  const refused = await runCli(['endpoints', 'list', ...as(ORDERS_KEY)]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /herald endpoints: [A-Z_]+: .+ \(HTTP 403\)/);

  const event = (await runCli(['publish', 'orders.cli', '{"n":1}', '--type', 'order.paid', ...as(ADMIN_KEY)])).stdout.trim();
  await waitFor(() => receiver.requests.length === 1, 10_000, 'the first delivery');
  const deliveries = (await waitFor(async () => {
    const r = await runCli(['endpoints', 'deliveries', endpoint.id, '--json', ...as(ADMIN_KEY)]);
    const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; status: string; eventId: string });
    return rows.length === 1 && rows[0]!.status === 'delivered' ? rows : undefined;
  }, 10_000, 'the delivery to be recorded'))!;
  assert.equal(deliveries[0]!.eventId, event);
  const lines = await runCli(['endpoints', 'deliveries', endpoint.id, '--status', 'delivered', ...as(ADMIN_KEY)]);
  assert.match(lines.stdout, new RegExp(`^${deliveries[0]!.id} delivered 1 ${event} "200"$`, 'm'));

  const retry = await runCli(['endpoints', 'retry', deliveries[0]!.id, ...as(ADMIN_KEY)]);
  assert.equal(retry.code, 0, retry.stderr);
  assert.equal(retry.stdout.trim(), `queued ${deliveries[0]!.id}`);
  await waitFor(() => receiver.requests.length === 2, 10_000, 'the retried delivery');
  assert.equal(receiver.requests[1]!.headers['webhook-id'], receiver.requests[0]!.headers['webhook-id']);

  const unknown = await runCli(['endpoints', 'retry', 'dlv_999999', ...as(ADMIN_KEY)]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /DELIVERY_NOT_FOUND/);
});
