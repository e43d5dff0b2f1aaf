// uws-server -- the yardstick issue 4 names: uWebSockets' native pub/sub,
// as Bun exposes it, speaking the part of luahub's protocol that
// luahub-bench uses (welcome, join_room, room chat with seq and ack, ping).
//
// Like the limit server it has no Lua, no limits and no safety; unlike it,
// it is what people pick for speed today. A chat is encoded once in JS and
// handed to server.publish(), which frames it once in uWS's C++ and copies
// it to every subscriber. Run it with Bun (tests/bench/uws.sh installs Bun
// from the npm registry into build/bun):
//   bun tests/bench/uws_server.js PORT
const port = Number(process.argv[2] || 9603);
const rooms = new Map(); // room id -> last seq
let connIds = 0;

function idText(v) {
  return v === undefined ? "null" : JSON.stringify(v);
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, srv) {
    const url = new URL(req.url);
    const user = url.searchParams.get("user") || "anon";
    if (srv.upgrade(req, { data: { user, connId: String(++connIds) } })) return;
    return new Response("websocket only", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 64 * 1024,
    backpressureLimit: 16 * 1024 * 1024,
    idleTimeout: 0,
    open(ws) {
      ws.send(
        `{"type":"welcome","conn_id":"${ws.data.connId}","user_id":` +
          `${JSON.stringify(ws.data.user)},"timestamp":${Date.now()}}`,
      );
    },
    message(ws, text) {
      let m;
      try {
        m = JSON.parse(text);
      } catch {
        ws.send('{"type":"error","code":"bad_json","message":"not JSON"}');
        return;
      }
      const room = m.room_id;
      if (m.type === "chat" && typeof room === "string") {
        const seq = (rooms.get(room) || 0) + 1;
        rooms.set(room, seq);
        server.publish(
          room,
          `{"type":"chat","room_id":${JSON.stringify(room)},"from":` +
            `${JSON.stringify(ws.data.user)},"payload":` +
            `${JSON.stringify(m.payload)},"seq":${seq},"timestamp":${Date.now()}}`,
        );
        ws.send(`{"type":"ack","id":${idText(m.id)},"seq":${seq}}`);
      } else if (m.type === "join_room" && typeof room === "string") {
        ws.subscribe(room);
        ws.send(
          `{"type":"ack","id":${idText(m.id)},"room_id":${JSON.stringify(room)},` +
            `"seq":${rooms.get(room) || 0}}`,
        );
      } else if (m.type === "ping") {
        ws.send(`{"type":"pong","id":${idText(m.id)},"timestamp":${Date.now()}}`);
      }
    },
  },
});

process.on("SIGINT", () => {
  server.stop(true);
  process.exit(0);
});
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
