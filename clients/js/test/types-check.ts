// Compiled, never run: `tsc --noEmit -p clients/js` (tests/browser/types.test.mjs)
// proves that luahub.d.ts describes the API that docs/client.md shows.
import connect, { LuahubError, backoffDelay, type Frame, type Status } from '../luahub.js';

async function example(): Promise<void> {
  const hub = connect('wss://chat.example.com/ws', { user: 'alice', backoff: { base: 250, cap: 10000 } });
  hub.on('state', (state, detail) => console.log(state, detail.delay ?? 0));
  hub.on('poll', (frame: Frame) => console.log(frame.payload));
  const room = await hub.join('lobby', {
    onMessage: (m, { replayed }) => console.log(m.seq, m.from, m.payload?.text, replayed),
    onReset: (info) => console.log(`gap after ${info.since} in ${info.room}`),
    onTyping: (users) => console.log(users.join(', ')),
  });
  const { seq } = await room.send({ text: 'hi' });
  const page = await room.history({ limit: 20 });
  console.log(seq + page.messages.length, room.seq, room.members?.length);
  room.typing();
  const statuses = await hub.subscribe(['bob']);
  const s: Status | undefined = statuses.bob;
  await hub.setStatus('away');
  try {
    await hub.request('poll', { room_id: 'lobby', payload: { question: 'Lunch?' } });
  } catch (e) {
    if (e instanceof LuahubError) console.log(e.code, e.frame?.message, s);
  }
  await hub.sendTo('bob', { text: 'psst' });
  hub.notify('typing', { room_id: 'lobby' });
  console.log(backoffDelay(3));
  const other = connect({ token: async () => 'jwt' });
  other.close();
  await room.leave();
  hub.close();
}
void example;
