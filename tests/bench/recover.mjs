// recover.mjs: how long a client takes to recover N missed messages
// (issue 12): a publisher joins a room and publishes N chats; then, REPS
// times, a new client connects (to another node or the same) and sends
// join_room with since 0 and the room's epoch, and the time from sending
// it to the whole ack arriving (N frames in "messages", recovered true,
// checked after the clock stops) is taken. Prints one JSON line: the
// times' min, median, p90 and max in ms, and the ack's size.
//   node tests/bench/recover.mjs --pub-port A --port B [--n 1000] [--reps 30]
import WebSocket from '../integration/node_modules/ws/wrapper.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const PUB = arg('pub-port');
const PORT = arg('port', PUB);
const N = arg('n', 1000);
const REPS = arg('reps', 30);
const ROOM = `recover-${process.pid}`;

// A connection whose frames are handed, as text, to whoever waits.
function open(port, user) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?user=${user}`);
    const c = { ws, waiters: [] };
    ws.on('message', (d) => {
      const t = d.toString();
      c.waiters = c.waiters.filter((w) => !w(t));
    });
    c.wait = (pred) => new Promise((res) => c.waiters.push((t) => pred(t) && (res(t), true)));
    ws.once('error', reject);
    const welcome = c.wait((t) => t.includes('"type":"welcome"'));
    ws.once('open', () => welcome.then(() => resolve(c)));
  });
}

const pub = await open(PUB, 'recover-pub');
const joined = pub.wait((t) => t.includes('"id":"j"'));
pub.ws.send(JSON.stringify({ type: 'join_room', id: 'j', room_id: ROOM }));
const { epoch } = JSON.parse(await joined);
// A chat of about 100 bytes of text, as a chat app's.
const text = 'x'.repeat(100);
const last = pub.wait((t) => t.includes(`"id":${N}}`) || t.includes(`"id":${N},`));
for (let i = 1; i <= N; i++) pub.ws.send(JSON.stringify({ type: 'chat', id: i, room_id: ROOM, payload: { text } }));
await last;

const ms = [];
let bytes = 0;
for (let r = 0; r < REPS; r++) {
  const c = await open(PORT, `recover-${r}`);
  const got = c.wait((t) => t.includes('"id":"rec"'));
  const t0 = process.hrtime.bigint();
  c.ws.send(JSON.stringify({ type: 'join_room', id: 'rec', room_id: ROOM, payload: { since: 0, epoch } }));
  const t = await got;
  ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  const ack = JSON.parse(t);
  if (!ack.recovered || ack.messages.length !== N || ack.seq !== N) {
    throw new Error(`not a full recovery: ${t.slice(0, 300)}`);
  }
  bytes = t.length;
  const closed = new Promise((res) => c.ws.once('close', res));
  c.ws.close();
  await closed;
}
pub.ws.close();
ms.sort((a, b) => a - b);
const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
console.log(JSON.stringify({ n: N, reps: REPS, ack_bytes: bytes, min: ms[0], median: q(0.5), p90: q(0.9), max: ms.at(-1) }));
