// The benchmark's platform floor: the same topology as the app's DO path (producer → Worker → DO → Worker →
// consumer) with nothing in between. One DO per channel pipes a producer's POST body (/produce?ch=) into a
// consumer's streaming GET (/consume?ch=) without parsing or storing it.

export class Relay {
  constructor() {
    this.channels = new Map();
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
      // A BYOB reader takes whatever has arrived, up to the buffer (the default reader stops at 4 KB), which
      // measured faster than pipeTo here: this is the floor, so it gets the faster of the two.
      const reader = request.body.getReader({ mode: "byob" });
      const writer = writable.getWriter();
      let buffer = new ArrayBuffer(512 * 1024);
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(buffer));
        if (done) break;
        await writer.write(value.slice());
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
