// Sends one event of every type through Segment's and RudderStack's own Node SDKs to a running
// sluice, and exits non-zero if either SDK reports a failed delivery.
// Usage: node send.mjs URL WRITE_KEY
import { Analytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';

const [url, writeKey] = process.argv.slice(2);
if (!url || !writeKey) {
  console.error('usage: node send.mjs URL WRITE_KEY');
  process.exit(2);
}

function sendAll(client, prefix) {
  sendAllWith(client, prefix, null);
}

// Sends one event of each type; `makeCallback`, when given, makes each call's callback.
function sendAllWith(client, prefix, makeCallback) {
  const user = `${prefix}-u1`;
  const args = (extra) => (makeCallback ? [extra, makeCallback()] : [extra]);
  client.track(...args({ userId: user, event: 'Order Completed',
    properties: { revenue: 42.5, currency: 'EUR', products: [{ sku: 'A-1', qty: 2 }] },
    context: { ip: '203.0.113.9' } }));
  client.identify(...args({ userId: user, traits: { plan: 'pro', email: 'a@example.com' } }));
  client.page(...args({ anonymousId: `${prefix}-anon`, name: 'Home', properties: { path: '/' } }));
  client.screen(...args({ userId: user, name: 'Settings' }));
  client.group(...args({ userId: user, groupId: `${prefix}-g1`, traits: { name: 'Acme' } }));
  client.alias(...args({ userId: user, previousId: `${prefix}-anon` }));
}

let failures = 0;

// Segment: analytics-node batches to POST {host}/v1/batch with Basic auth.
const segment = new Analytics({ writeKey, host: url, flushAt: 3, flushInterval: 100, maxRetries: 0 });
segment.on('error', (err) => {
  failures++;
  console.error('segment error:', err?.code ?? '', err?.reason?.message ?? err?.message ?? err);
});
segment.on('http_request', (req) => console.log('segment request:', req.method, req.url));
sendAll(segment, 'seg');
await segment.closeAndFlush({ timeout: 10000 });

// RudderStack: rudder-sdk-node batches to POST {dataPlaneUrl}/v1/batch with Basic auth. Its
// flush() may answer before an earlier flush has finished, so wait for every message's own
// delivery callback instead.
const rudder = new RudderAnalytics(writeKey, { dataPlaneUrl: url, flushAt: 3, flushInterval: 100,
  retryCount: 0, errorHandler: (err) => { failures++; console.error('rudder error:', err?.message ?? err); } });
const pending = [];
const onDelivered = () => {
  let done;
  pending.push(new Promise((resolve) => { done = resolve; }));
  return (err) => {
    if (err) { failures++; console.error('rudder delivery error:', err?.message ?? err); }
    done();
  };
};
sendAllWith(rudder, 'rud', onDelivered);
rudder.flush();
const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 10000));
if (await Promise.race([Promise.all(pending), timeout]) === 'timeout') {
  failures++;
  console.error('rudder: not every message was delivered within 10 s');
}

console.log(failures === 0 ? 'sdk-compat: all delivered' : `sdk-compat: ${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
