// bester client SDK for browsers, built from src/sdk/browser.ts by build/browser-client.ts: do not edit.

// src/sdk/client-api.ts
class BesterClientError extends Error {
  code;
  name = "BesterClientError";
  constructor(code, message, options) {
    super(message, options);
    this.code = code;
  }
}
var DEFAULT_CONNECT_TIMEOUT_MS = 1e4;

// src/guard.ts
function isRecord(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// src/protocol/frame-json.ts
function frameJson(value) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    if (err instanceof TypeError)
      throw err;
    throw new TypeError(`value is not JSON-serialisable: ${String(err)}`, { cause: err });
  }
  if (json === undefined) {
    throw new TypeError(`value is not JSON-serialisable: ${typeof value}`);
  }
  return json;
}

// src/sdk/client-session.ts
var DEFAULT_CLIENT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
var AUTH_ID = "auth_special";
var ACK_EVERY = 32;
var ACK_AFTER_MS = 1000;
var CLOSE_WAIT_MS = 1000;
function errorInfoOf(header) {
  const error = header["error"];
  if (!isRecord(error))
    return;
  return { code: String(error["code"] ?? "unknown"), message: String(error["message"] ?? "") };
}

class Client {
  username;
  closed;
  delivery = { ack: false, reset: false };
  lastSeq;
  #ackedSeq;
  #ackEvery;
  #ackAfterMs;
  #ackTimer;
  #ackSeq = 0;
  #wire;
  #pending = new Map;
  #inbox = [];
  #wake = [];
  #seq = 0;
  #fatal;
  #closeInfo;
  #closing = false;
  #error;
  #resolveClosed;
  #onLoginFrame;
  constructor(username, ack, lastSeq) {
    this.username = username;
    this.#ackEvery = typeof ack === "object" ? ack.every ?? ACK_EVERY : ACK_EVERY;
    this.#ackAfterMs = typeof ack === "object" ? ack.afterMs ?? ACK_AFTER_MS : ACK_AFTER_MS;
    this.lastSeq = lastSeq;
    this.#ackedSeq = 0;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }
  attach(wire) {
    this.#wire = wire;
  }
  login(password, ack) {
    return new Promise((resolve, reject) => {
      this.#onLoginFrame = (frame) => {
        const header = isRecord(frame["header"]) ? frame["header"] : {};
        const payload = isRecord(frame["payload"]) ? frame["payload"] : {};
        this.#onLoginFrame = undefined;
        if (header["messageType"] === "statusReport" && payload["id"] === AUTH_ID && header["status"] === "good") {
          const delivery = isRecord(header["delivery"]) ? header["delivery"] : {};
          this.delivery = { ack: delivery["ack"] === true, reset: delivery["reset"] === true };
          if (this.delivery.reset)
            this.lastSeq = this.#ackedSeq = 0;
          resolve();
          return;
        }
        const error = errorInfoOf(header);
        const why = error ? `${error.code}: ${error.message}` : `unexpected reply ${JSON.stringify(frame).slice(0, 200)}`;
        reject(new BesterClientError(error?.code ?? "protocol_error", `login refused for '${this.username}': ${why}`));
        this.#wire?.destroy();
      };
      this.closed.then((info) => {
        if (this.#onLoginFrame === undefined)
          return;
        this.#onLoginFrame = undefined;
        const why = info.fatal ? `${info.fatal.code}: ${info.fatal.message}` : info.error ? info.error.message : "the server closed the connection without answering";
        reject(new BesterClientError(info.fatal?.code ?? "connection_closed", `login failed for '${this.username}': ${why}`));
      });
      this.#wire.send(frameJson({
        header: { scope: "client", authentication: { username: this.username, password }, ...ack ? { delivery: { ack: true } } : {} },
        payload: { type: "dummy", id: "login", data: null }
      }));
    });
  }
  send(type, data = null) {
    if (this.#closeInfo !== undefined || this.#closing) {
      return Promise.reject(new BesterClientError("connection_closed", this.#closedMessage()));
    }
    const id = `m-${++this.#seq}`;
    let json;
    try {
      json = frameJson({ payload: { type, id, data: data === undefined ? null : data } });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#wire.send(json);
    });
  }
  async* messages() {
    for (;; ) {
      const next = this.#inbox.shift();
      if (next !== undefined) {
        if (next.seq !== undefined)
          this.#handedOver(next.seq);
        yield next;
        continue;
      }
      if (this.#closeInfo !== undefined)
        return;
      await new Promise((resolve) => this.#wake.push(resolve));
    }
  }
  async acknowledge() {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const seq = this.lastSeq;
    if (!this.delivery.ack || seq <= this.#ackedSeq || this.#closeInfo !== undefined)
      return;
    this.#ackedSeq = seq;
    const id = `ack-${++this.#ackSeq}`;
    const report = await new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#wire.send(frameJson({ payload: { type: "builtin", id, data: { command: { type: "ack", args: { seq } } } } }));
    });
    if (report.status === "bad")
      throw new BesterClientError(report.error?.code ?? "bad_ack", report.error?.message ?? "acknowledgement refused");
  }
  #handedOver(seq) {
    if (seq > this.lastSeq)
      this.lastSeq = seq;
    if (this.lastSeq - this.#ackedSeq >= this.#ackEvery)
      this.acknowledge().catch(() => {});
    else if (this.#ackTimer === undefined) {
      this.#ackTimer = setTimeout(() => void this.acknowledge().catch(() => {}), this.#ackAfterMs);
    }
  }
  async close() {
    if (this.#closeInfo === undefined && !this.#closing) {
      await this.acknowledge().catch(() => {});
    }
    if (this.#closeInfo === undefined && !this.#closing) {
      this.#closing = true;
      this.#wire.end();
      const timer = setTimeout(() => this.#wire.destroy(), CLOSE_WAIT_MS);
      this.closed.then(() => clearTimeout(timer));
    }
    return this.closed;
  }
  frame(value) {
    if (!isRecord(value))
      return;
    if (this.#onLoginFrame !== undefined) {
      this.#onLoginFrame(value);
      return;
    }
    const header = isRecord(value["header"]) ? value["header"] : {};
    const payload = isRecord(value["payload"]) ? value["payload"] : {};
    switch (header["messageType"]) {
      case "receivedMessage": {
        const seq = header["seq"];
        const message = { type: String(payload["type"] ?? ""), data: payload["data"] ?? null };
        if (typeof seq === "number") {
          if (seq <= this.lastSeq)
            return this.#handedOver(seq);
          message.seq = seq;
        }
        this.#inbox.push(message);
        for (const wake of this.#wake.splice(0))
          wake();
        return;
      }
      case "statusReport": {
        const id = String(payload["id"]);
        const status = header["status"] === "good" ? "good" : "bad";
        const report = { id, status };
        const error = errorInfoOf(header);
        if (error)
          report.error = error;
        const undelivered = header["undelivered"];
        if (Array.isArray(undelivered))
          report.undelivered = undelivered.map(String);
        const queued = header["queued"];
        if (Array.isArray(queued))
          report.queued = queued.map(String);
        if (Object.hasOwn(payload, "data"))
          report.data = payload["data"];
        this.#settle(id, report);
        return;
      }
      case "fatal":
        this.#fatal = errorInfoOf(header) ?? { code: "unknown", message: "fatal error without details" };
        return;
    }
    if (header["status"] === "0" && payload["type"] === "dummy") {
      const id = String(payload["id"]);
      this.#settle(id, { id, status: "good" });
    }
  }
  failed(err) {
    this.#error ??= err;
  }
  #settle(id, report) {
    const pending = this.#pending.get(id);
    if (pending === undefined)
      return;
    this.#pending.delete(id);
    pending.resolve(report);
  }
  #closedMessage() {
    if (this.#fatal)
      return `connection closed by the server: ${this.#fatal.code}: ${this.#fatal.message}`;
    if (this.#error)
      return `connection failed: ${this.#error.message}`;
    return this.#closing ? "connection closed by the client" : "connection closed by the server";
  }
  ended(code) {
    if (this.#closeInfo !== undefined)
      return;
    const info = this.#closing && !this.#fatal ? { by: "client" } : this.#error && !this.#fatal ? { by: "error", error: this.#error } : this.#fatal ? { by: "server", fatal: this.#fatal } : { by: "server" };
    if (code !== undefined)
      info.code = code;
    this.#closeInfo = info;
    clearTimeout(this.#ackTimer);
    const message = this.#closedMessage();
    for (const [, pending] of this.#pending)
      pending.reject(new BesterClientError(this.#fatal?.code ?? "connection_closed", message));
    this.#pending.clear();
    for (const wake of this.#wake.splice(0))
      wake();
    this.#resolveClosed(info);
  }
}
async function connectWith(open, where, options) {
  const { username, password } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const client = new Client(username, options.ack, options.lastSeq ?? 0);
  const events = {
    frame: (value) => client.frame(value),
    failed: (err) => client.failed(err),
    closed: (code) => client.ended(code)
  };
  let wire;
  let timedOut = false;
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      wire?.destroy();
      reject(new BesterClientError("timeout", `no login answer from ${where} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const opening = open(events);
    opening.then((late) => timedOut && late.destroy(), () => {});
    wire = await Promise.race([deadline, opening]);
    client.attach(wire);
    const ack = options.ack !== undefined && options.ack !== false;
    await Promise.race([deadline, client.login(password, ack)]);
    return client;
  } catch (err) {
    wire?.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
function maxFrameBytesOf(options) {
  return options.maxFrameBytes ?? DEFAULT_CLIENT_MAX_FRAME_BYTES;
}

// src/sdk/client-websocket.ts
function webSocketWire(url, maxFrameBytes) {
  return (events) => {
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (err) {
      return Promise.reject(new BesterClientError("bad_address", `'${url}' is not a WebSocket URL: ${err.message}`, { cause: err }));
    }
    socket.binaryType = "arraybuffer";
    let ended = false;
    const end = (code) => {
      if (ended)
        return;
      ended = true;
      events.closed(code);
    };
    const wire = {
      send(json) {
        if (socket.readyState === WebSocket.OPEN)
          socket.send(json);
      },
      end: () => socket.close(1000),
      destroy: () => {
        socket.close(1000);
        end();
      }
    };
    return new Promise((resolve, reject) => {
      let up = false;
      socket.onopen = () => {
        up = true;
        resolve(wire);
      };
      socket.onmessage = (e) => {
        const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
        if (text.length > maxFrameBytes) {
          events.failed(new BesterClientError("protocol_error", `bad frame from the server: ${text.length} characters, more than the ${maxFrameBytes} bytes allowed`));
          return wire.destroy();
        }
        let value;
        try {
          value = JSON.parse(text);
        } catch (err) {
          events.failed(new BesterClientError("protocol_error", `bad frame from the server: not JSON (${err.message})`));
          return wire.destroy();
        }
        events.frame(value);
      };
      socket.onclose = (e) => {
        if (!up)
          return reject(new BesterClientError("connect_failed", `cannot connect to ${url}: the WebSocket closed before it opened (code ${e.code})`));
        end(e.code);
      };
    });
  };
}

// src/sdk/browser.ts
function connectClient(options) {
  if (options.url === undefined || options.target !== undefined) {
    return Promise.reject(new BesterClientError("bad_address", "in a browser, connect with url (ws:// or wss://): a browser opens no TCP or UNIX sockets"));
  }
  return connectWith(webSocketWire(options.url, maxFrameBytesOf(options)), options.url, options);
}
export {
  BesterClientError,
  DEFAULT_CONNECT_TIMEOUT_MS,
  connectClient
};
