// The benchmark's platform floors: the same topology as the app's DO path (producer → Worker → DO → Worker →
// consumer) with nothing in between. One DO per channel pipes a producer's POST body (/produce?ch=) into a
// consumer's streaming GET (/consume?ch=) without parsing it (floor c). With `&store=1` it first commits each
// chunk with one INSERT, and the output gate holds the forwarded bytes until that commit is durable: the least a
// relay that persists before it sends can cost (floor c′).

export class Relay {
  constructor(ctx) {
    this.ctx = ctx;
    this.channels = new Map();
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  }

  channel(name) {
    let channel = this.channels.get(name);
    if (!channel) {
      channel = {};
      channel.consumer = new Promise((resolve) => (channel.connect = resolve));
      this.channels.set(name, channel);
    }
    return channel;
  }

  async fetch(request) {
    const url = new URL(request.url);
    const channel = this.channel(url.searchParams.get("ch") ?? "");
    if (url.pathname === "/consume" && request.method === "GET") {
      const { readable, writable } = new IdentityTransformStream();
      channel.connect(writable);
      return new Response(readable, {
        headers: {
          "content-type": "application/x-ndjson",
          "content-encoding": "identity",
          "cache-control": "no-store",
        },
      });
    }
    if (url.pathname === "/produce" && request.method === "POST") {
      const writable = await channel.consumer;
      this.channels.delete(url.searchParams.get("ch") ?? "");
      const store = url.searchParams.get("store") === "1";
      // A BYOB reader takes whatever has arrived, up to the buffer (the default reader stops at 4 KB), which
      // measured faster than pipeTo here: this is the floor, so it gets the faster of the two.
      const reader = request.body.getReader({ mode: "byob" });
      const writer = writable.getWriter();
      let buffer = new ArrayBuffer(512 * 1024);
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(buffer));
        if (done) break;
        const chunk = value.slice();
        if (store) {
          this.ctx.storage.sql.exec("INSERT INTO chunks(body) VALUES (?)", chunk.buffer);
        }
        await writer.write(chunk);
        buffer = value.buffer;
      }
      await writer.close();
      return Response.json({ stored: 0, terminal: true });
    }
    return new Response("not found", { status: 404 });
  }
}

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/ping") {
      return new Response("vf-bench-relay");
    }
    const name = url.searchParams.get("ch") ?? "";
    return env.RELAY.get(env.RELAY.idFromName(name)).fetch(request);
  },
};
