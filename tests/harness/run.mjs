// Runs one scenario of the Node harness against a running auth-service and prints one JSON
// line on stdout: {"ok": true, "result": ...} (exit 0) or {"ok": false, "error": ...} (exit 1).
// Called by tests/support/harness.py:  node tests/harness/run.mjs <scenario> --base-url URL ...
// A scenario is scenarios/<name>.mjs, whose default export takes the options by their camelCase
// names (`--base-url` is `baseUrl`; a repeated option is an array) and returns what the test
// asserts on.
// Exit 2 for a wrong call of the runner, 1 for a scenario that failed.
function fail(error) {
  const { name, code, message } = error ?? {};
  process.stdout.write(`${JSON.stringify({ ok: false, error: { name, code, message: message ?? String(error) } })}\n`);
  process.exitCode = name === 'UsageError' ? 2 : 1;
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
  const result = await run(options);
  process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
}

main().catch((error) => fail(error));
