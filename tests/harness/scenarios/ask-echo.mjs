// The runner's conversation, for its own test: asks `echo` once per `--say` and returns the
// answers in order.
export default async function askEcho({ say = [] }, io) {
  const answers = [];
  for (const word of [say].flat()) answers.push(await io.ask('echo', { word }));
  return answers;
}
