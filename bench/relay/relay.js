// The benchmark's platform floor: the same topology as the app's DO path (producer → Worker → DO → Worker →
// consumer) with nothing in between. One DO per channel pipes a producer's POST body (/produce?ch=) into a
// consumer's streaming GET (/consume?ch=) without parsing, storing or copying it in JavaScript.

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
      await request.body.pipeTo(writable);
      return Response.json({ stored: 0, terminal: true });
    }
    return new Response("not found", { status: 404 });
  }
}

export default {
  fetch(request, env) {
    const name = new URL(request.url).searchParams.get("ch") ?? "";
    return env.RELAY.get(env.RELAY.idFromName(name)).fetch(request);
  },
};
