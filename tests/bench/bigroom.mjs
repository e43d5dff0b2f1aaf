// bigroom.mjs: what one join costs in a room of n members with several
// nodes (issue 15, "Big rooms"): a redis-server and one node over it
// (--redis); the room's roster in Redis is filled with n members
// directly (ZADD luahub:{ROOM}:roster, so that 100,000 members need no
// 100,000 sockets: they are members without a connection here, as users
// on other nodes are); then one real client sends join_room and
// leave_room REPS times, and the time from sending join_room to its ack
// is taken, with the ack's size; then, as a member, a room_members page
// of 100 from the middle of the room. Prints one JSON line per size.
//   node tests/bench/bigroom.mjs [--sizes 1,1000,10000,100000] [--reps 50]
//                                [--max-listed-members N]
import { Client } from '../integration/lib/harness.mjs';
import { Redis, makeNode, startNode } from '../integration/lib/redis.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const SIZES = arg('sizes', '1,1000,10000,100000').split(',').map(Number);
const REPS = Number(arg('reps', 50));
const LISTED = arg('max-listed-members', '1000');

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { min: +s[0].toFixed(3), median: +at(0.5).toFixed(3), p90: +at(0.9).toFixed(3) };
};

const redis = await new Redis().start();
const node = makeNode(redis.url(), 'bench1', { args: ['--max-listed-members', LISTED] });
try {
  await startNode(node);
  for (const size of SIZES) {
    const room = `big-${size}`;
    const key = `luahub:{${room}}:roster`;
    // size members, the first of which is the client below's peer.
    for (let i = 0; i < size; i += 1000) {
      const args = [];
      for (let j = i; j < Math.min(size, i + 1000); j++) args.push(0, `m${String(j).padStart(7, '0')}`);
      await redis.cmd('ZADD', key, ...args);
    }
    const c = await Client.connect(node, 'joiner');
    const times = [];
    let bytes = 0;
    for (let r = 0; r < REPS; r++) {
      const t0 = process.hrtime.bigint();
      const ack = await c.request({ type: 'join_room', room_id: room }, 30000);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (ack.type !== 'ack' || ack.member_count !== size + 1) throw new Error(JSON.stringify(ack).slice(0, 300));
      bytes = JSON.stringify(ack).length;
      const left = await c.request({ type: 'leave_room', room_id: room }, 30000);
      if (left.type !== 'ack') throw new Error(JSON.stringify(left));
    }
    await c.request({ type: 'join_room', room_id: room }, 30000);
    const pages = [];
    for (let r = 0; r < REPS; r++) {
      const t0 = process.hrtime.bigint();
      const p = await c.request({ type: 'room_members', room_id: room,
        payload: { after: `m${String(Math.floor(size / 2)).padStart(7, '0')}`, limit: 100 } }, 30000);
      pages.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (p.type !== 'ack') throw new Error(JSON.stringify(p));
    }
    await c.close();
    console.log(JSON.stringify({ members: size, max_listed_members: Number(LISTED), join_ms: stats(times),
      ack_bytes: bytes, page_ms: stats(pages) }));
  }
} finally {
  await node.stop().catch(() => {});
  await redis.destroy();
}
