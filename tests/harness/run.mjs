// Runs one scenario of the Node harness against a running auth-service and prints, as its last
// line on stdout, one JSON line: {"ok": true, "result": ...} (exit 0) or {"ok": false, "error":
// ...} (exit 1). Called by tests/support/harness.py:  node tests/harness/run.mjs <scenario>
// --base-url URL ...
// A scenario is scenarios/<name>.mjs, whose default export takes the options by their camelCase
// names (`--base-url` is `baseUrl`; a repeated option is an array) and returns what the test
// asserts on.
//
// A scenario that needs the test's help midway (a browser to sign in, a second factor enrolled)
// asks through its second argument: `await io.ask('browser', { url })` prints one line
// {"ask": "browser", "url": ...} and waits for the test's one-line answer on stdin, {"reply":
// ...} (what `ask` returns) or {"error": "..."} (`ask` throws). Run without a conversation
// (stdin closed), `ask` throws. Modules shared by scenarios live in lib/.
// Exit 2 for a wrong call of the runner, 1 for a scenario that failed.
import { createInterface } from 'node:readline';

function write(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function fail(error) {
  const { name, code, message } = error ?? {};
  // An RFC 6749 error the client library received: its `error` says which.
  const oauthError = error?.error ?? error?.cause?.error;
  const detail = typeof oauthError === 'string' ? { error: oauthError } : {};
  // What a library's error wraps (openid-client's ClientError wraps oauth4webapi's and jose's).
  const inner = error?.cause instanceof Error ? { cause: { name: error.cause.name, code: error.cause.code, message: error.cause.message } } : {};
  write({ ok: false, error: { name, code, message: message ?? String(error), ...detail, ...inner } });
  process.exitCode = name === 'UsageError' ? 2 : 1;
}

// The test's side of the conversation: each `ask` takes the next line of stdin.
function conversation() {
  let lines;
  let closed = false;
  const received = [];
  const waiting = [];
  function open() {
    if (lines) return;
    lines = createInterface({ input: process.stdin, terminal: false });
    lines.on('line', (line) => (waiting.length ? waiting.shift().resolve(line) : received.push(line)));
    lines.on('close', () => {
      closed = true;
      for (const { reject } of waiting.splice(0)) reject(new Error('the test closed the conversation'));
    });
  }
  function next() {
    if (received.length) return Promise.resolve(received.shift());
    if (closed) return Promise.reject(new Error('the test closed the conversation'));
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  }
  return {
    async ask(kind, payload = {}) {
      open();
      write({ ask: kind, ...payload });
      const answer = JSON.parse(await next());
      if (answer.error !== undefined) {
        throw Object.assign(new Error(`the test could not answer ${kind}: ${answer.error}`), { name: 'AskFailed' });
      }
      return answer.reply;
    },
    close() {
      lines?.close();
    },
  };
}

function usage(message) {
  return Object.assign(new Error(message), { name: 'UsageError' });
}

// `--name value` and `--name=value` pairs only: every option takes a value, so none is mistaken
// for a flag (node:util parseArgs would need each scenario's options declared up front).
function parse(argv) {
  const [scenario, ...rest] = argv;
  const options = {};
  for (let i = 0; i < rest.length; i += 1) {
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(rest[i]);
    if (!match) throw usage(`unexpected argument ${rest[i]}`);
    const value = match[2] ?? rest[(i += 1)];
    if (value === undefined) throw usage(`--${match[1]} needs a value`);
    const key = match[1].replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
    options[key] = key in options ? [options[key], value].flat() : value;
  }
  return { scenario, options };
}

async function main() {
  const { scenario, options } = parse(process.argv.slice(2));
  if (!scenario || !/^[a-z0-9-]+$/.test(scenario)) {
    throw usage('usage: run.mjs <scenario> --base-url URL [--option value ...]');
  }
  if (typeof options.baseUrl !== 'string') throw usage('--base-url URL is required');
  let run;
  try {
    ({ default: run } = await import(`./scenarios/${scenario}.mjs`));
  } catch (error) {
    throw usage(`unknown scenario ${scenario}: ${error.message}`);
  }
  const io = conversation();
  try {
    write({ ok: true, result: await run(options, io) });
  } finally {
    io.close();
  }
}

main().catch((error) => fail(error));
