// Validates custom resources against the schemas shipped in npm's @kubernetes-models/* packages
// (installed into .tools/crd-schemas by scripts/deploy/install-tools.sh from the lockfile in
// scripts/deploy/crd-schemas/). Input on stdin: a JSON array of objects (scripts/deploy/
// validate_crds.py converts the rendered YAML). Prints one line per object; exit 1 when any
// object is invalid or of a kind no package here describes.
//
//   node scripts/deploy/validate-crds.mjs <node_modules dir>  < objects.json
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// API group -> the package whose schemas describe it.
const PACKAGES = {
  "cert-manager.io": "@kubernetes-models/cert-manager",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "networking.istio.io": "@kubernetes-models/istio",
  "security.istio.io": "@kubernetes-models/istio",
};

const modules = process.argv[2];
if (!modules || !existsSync(modules)) {
  console.error(`validate-crds: no node_modules at '${modules}' (run scripts/deploy/install-tools.sh crd)`);
  process.exit(2);
}
const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const { source, object } of objects) {
  const [group, version] = String(object.apiVersion).split("/");
  const name = `${source}: ${object.kind} ${group}/${version} ${object.metadata?.name}`;
  const pkg = PACKAGES[group];
  const file = pkg && join(modules, pkg, group, version ?? "", `${object.kind}.js`);
  if (!file || !existsSync(file)) {
    console.error(`FAIL ${name}: no schema for this kind in the installed @kubernetes-models packages`);
    failed++;
    continue;
  }
  const Model = (await import(pathToFileURL(file).href))[object.kind];
  try {
    new Model(object).validate();
    console.log(`ok   ${name}`);
  } catch (err) {
    console.error(`FAIL ${name}: ${err.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
