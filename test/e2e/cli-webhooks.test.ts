import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startInProcess } from '../helpers/herald.js';

const STRIPE_SECRET = 'whsec_cli_stripe_test_secret';
const GITHUB_SECRET = 'cli-github-test-secret';
const STANDARD_SECRET = 'whsec_' + Buffer.from('cli-standard-webhooks-test-key-32b').toString('base64');
const ADMIN_KEY = 'cli-webhooks-admin-key-0123456789';

let h: Awaited<ReturnType<typeof startInProcess>>;
before(async () => {
  h = await startInProcess({
    auth: { apiKeys: [{ key: ADMIN_KEY, scopes: ['admin'] }] },
    sources: {
      pay: { provider: 'stripe', secret: STRIPE_SECRET, channel: 'pay.{type}' },
      code: { provider: 'github', secret: GITHUB_SECRET, channel: 'code.{type}', unsignedTypeInChannel: true },
      std: { provider: 'standard', secret: STANDARD_SECRET, channel: 'std.{type}' },
    },
  });
});
after(() => h.close());

async function history(pattern: string): Promise<{ id: string; channel: string; type: string; data: any }[]> {
  const r = await runCli(['events', pattern, '--json', '--url', h.url, '--key', ADMIN_KEY]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const send = (provider: string, source: string, secret: string, ...more: string[]) =>
  runCli(['webhooks', 'send', '--provider', provider, '--source', source, '--secret', secret, '--url', h.url, ...more]);

test('webhooks send signs as Stripe does: Herald verifies it, publishes it once, and answers a resend as a duplicate', async () => {
  const args = ['--type', 'payment_intent.succeeded', '--data', '{"amount":4200}', '--id', 'evt_cli_1', '--json'];
  const first = await send('stripe', 'pay', STRIPE_SECRET, ...args);
  assert.equal(first.code, 0, first.stderr);
  const answer = JSON.parse(first.stdout) as { received: boolean; id: string; duplicate: boolean };
  assert.equal(answer.duplicate, false);
  const again = JSON.parse((await send('stripe', 'pay', STRIPE_SECRET, ...args)).stdout) as typeof answer;
  assert.deepEqual([again.duplicate, again.id], [true, answer.id]);
  const events = await history('pay.>');
  assert.equal(events.length, 1);
  assert.equal(events[0]!.id, answer.id);
  assert.equal(events[0]!.channel, 'pay.payment_intent.succeeded');
  assert.equal(events[0]!.data.data.object.amount, 4200);
});

test('webhooks send signs as GitHub and as Standard Webhooks do, with the event type where each provider puts it', async () => {
  const gh = await send('github', 'code', GITHUB_SECRET, '--type', 'push', '--data', '{"ref":"refs/heads/main"}');
  assert.equal(gh.code, 0, gh.stderr);
  assert.match(gh.stdout, /^200 \{"received":true/);
  const std = await send('standard', 'std', STANDARD_SECRET, '--type', 'invoice.paid', '--data', '{"total":9}');
  assert.equal(std.code, 0, std.stderr);
  const [push] = await history('code.>');
  assert.deepEqual([push!.channel, push!.type, push!.data.ref], ['code.push', 'push', 'refs/heads/main']);
  const [invoice] = await history('std.>');
  assert.deepEqual([invoice!.channel, invoice!.type, invoice!.data.data.total], ['std.invoice.paid', 'invoice.paid', 9]);
});

test('a wrong secret or source is Herald’s refusal, printed with its code (exit 1); a missing flag is a usage error (exit 2)', async () => {
  const wrong = await send('stripe', 'pay', 'whsec_not_the_secret');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^herald webhooks: SIGNATURE_INVALID: .+ \(HTTP 401\)$/m);
  const unknown = await send('github', 'nowhere', GITHUB_SECRET);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /SOURCE_UNKNOWN/);
  const noProvider = await runCli(['webhooks', 'send', '--source', 'pay', '--secret', STRIPE_SECRET, '--url', h.url]);
  assert.equal(noProvider.code, 2);
  assert.match(noProvider.stderr, /--provider is one of stripe, github, standard/);
  const fromEnv = await runCli(['webhooks', 'send', '--provider', 'stripe', '--source', 'pay'], { HERALD_URL: h.url, HERALD_WEBHOOK_SECRET: STRIPE_SECRET });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
});
