// proxy.mjs: a TCP proxy on a loopback port in front of a server, that a
// test controls: drop() cuts every connection through it at once (both
// sides, as a network that fails would), refuse() makes it turn new
// connections away until allow(). Clients that should lose their network
// connect to the proxy; the rest connect to the server itself.
import net from 'node:net';

export class Proxy {
  constructor(targetPort, targetHost = '127.0.0.1') {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.pairs = new Set();
    this.refusing = false;
    this.accepted = 0;
    this.drops = 0;
  }

  async start() {
    this.server = net.createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      this.accepted++;
      const upstream = net.connect(this.targetPort, this.targetHost);
      const pair = { client, upstream };
      this.pairs.add(pair);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end);
      upstream.on('error', end);
      client.on('close', end);
      upstream.on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return this;
  }

  // Every connection through the proxy now, cut (RST both ways).
  drop() {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy?.() ?? client.destroy();
      upstream.resetAndDestroy?.() ?? upstream.destroy();
      this.drops++;
    }
    this.pairs.clear();
  }

  refuse() { this.refusing = true; }

  allow() { this.refusing = false; }

  get open() { return this.pairs.size; }

  async stop() {
    this.drop();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
