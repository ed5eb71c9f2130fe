/**
 * The Kubernetes manifests: every object validates against the Kubernetes JSON schemas (the
 * ajv-compiled validators of `kubernetes-models`, Kubernetes 1.27 API), has no field the API does
 * not know (TypeScript's excess-property check against the same package's types), and agrees with
 * the app: settings are real and valid, probes hit routes that answer, ports, users, volumes and the
 * grace period fit the image and the drain.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerfileParser } from 'dockerfile-ast';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IContainer } from 'kubernetes-models/v1/Container';
import request from 'supertest';
import ts from 'typescript';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import type { CvServe } from '../../src/app.js';
import { USAGE } from '../../src/cli.js';
import { loadConfig, SETTINGS } from '../../src/config.js';
import { numericUser } from '../helpers/dockerfile.js';
import { createTestApp } from '../helpers/app.js';
import { until } from '../helpers/wait.js';
import { MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';

const DIR = path.join(REPO_ROOT, 'deploy/k8s');

/** kind → [apiVersion, model class, module of its TypeScript interface, interface name]. */
const KINDS = {
  ConfigMap: ['v1', ConfigMap, 'kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  Service: ['v1', Service, 'kubernetes-models/v1/Service', 'IService'],
  Deployment: ['apps/v1', Deployment, 'kubernetes-models/apps/v1/Deployment', 'IDeployment'],
  HorizontalPodAutoscaler: ['autoscaling/v2', HorizontalPodAutoscaler, 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'IHorizontalPodAutoscaler'],
  PodDisruptionBudget: ['policy/v1', PodDisruptionBudget, 'kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'],
} as const;
type Kind = keyof typeof KINDS;

interface Doc {
  file: string;
  kind: Kind;
  object: Record<string, unknown> & { apiVersion: string; kind: string; metadata?: { name?: string } };
}

const manifestFiles = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
const docs: Doc[] = manifestFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    const object = d.toJS() as Doc['object'];
    assert.ok(object.kind in KINDS, `${file}: kind ${object.kind} is not one the test knows`);
    return { file, kind: object.kind as Kind, object };
  }),
);

function only<T>(kind: Kind): T {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!.object as T;
}

const configMap = only<IConfigMap>('ConfigMap');
const deployment = only<IDeployment>('Deployment');
const service = only<IService>('Service');
const hpa = only<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler');
const pdb = only<IPodDisruptionBudget>('PodDisruptionBudget');
const pod = deployment.spec!.template.spec!;
const main = pod.containers.find((c) => c.name === 'cvserve')!;
const init = pod.initContainers ?? [];
const settings = configMap.data ?? {};
const knownEnv = new Set<string>(Object.values(SETTINGS).map((s) => s.env));
/** The effective config of a pod: the ConfigMap over the defaults. */
const podConfig = loadConfig(settings);

/** Compiles `source` (in the repository, so packages resolve) and returns its diagnostics as text. */
function typeErrors(source: string): string[] {
  const file = path.join(REPO_ROOT, 'tests/deploy/__k8s_strict__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  host.readFile = (f) => (path.resolve(f) === file ? source : read(f));
  const exists = host.fileExists.bind(host);
  host.fileExists = (f) => path.resolve(f) === file || exists(f);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program, program.getSourceFile(file))
    .map((d) => `${d.start !== undefined ? d.file?.getLineAndCharacterOfPosition(d.start).line : '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

function strictSource(objects: { kind: Kind; object: unknown }[]): string {
  const imports = [...new Set(objects.map((o) => o.kind))].map((k) => `import type { ${KINDS[k][3]} } from '${KINDS[k][2]}';`);
  const consts = objects.map((o, i) => `export const doc${i}: ${KINDS[o.kind][3]} = ${JSON.stringify(o.object, null, 1)};`);
  return [...imports, ...consts].join('\n');
}

describe('Kubernetes manifests: schema', () => {
  it('kustomization.yaml lists exactly the manifests of deploy/k8s', () => {
    const k = parseYaml(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')) as { kind: string; resources: string[]; images?: { name: string }[] };
    assert.equal(k.kind, 'Kustomization');
    assert.deepEqual([...k.resources].sort(), manifestFiles);
    for (const img of k.images ?? []) assert.ok([...init, main].some((c) => c.image!.split(':')[0] === img.name), `images: ${img.name} is used`);
  });

  for (const doc of docs) {
    it(`${doc.file}: ${doc.kind} ${doc.object.metadata?.name} validates against the Kubernetes schema`, () => {
      const [apiVersion, Model] = KINDS[doc.kind];
      assert.equal(doc.object.apiVersion, apiVersion);
      new Model(doc.object as never).validate();
    });
  }

  it('the schema validation rejects a wrong type (the check can fail)', () => {
    const broken = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
    broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'http';
    assert.throws(() => new Deployment(broken as never).validate(), /containerPort must be integer/);
  });

  it('no object has a field Kubernetes does not know (excess-property check)', () => {
    assert.deepEqual(typeErrors(strictSource(docs)), []);
    // The same check on a misspelt field, so it is known to bite.
    const typo = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    typo.spec.template.spec.containers[0]!.readinessProbes = { httpGet: { path: '/readyz', port: 8080 } };
    const errors = typeErrors(strictSource([{ kind: 'Deployment', object: typo }]));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /readinessProbes/);
  });
});

describe('Kubernetes manifests agree with the app and the image', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({ ...podConfig, logLevel: 'silent', modelsDir: MODELS_DIR, modelsFetch: false });
  });
  after(async () => {
    await svc?.close();
  });

  it('sets only settings the app knows, with values it accepts', () => {
    const names = [...Object.keys(settings), ...[...init, main].flatMap((c) => (c.env ?? []).map((e) => e.name))];
    assert.deepEqual(names.filter((n) => !knownEnv.has(n)), []);
    // loadConfig above threw on any invalid value; and the pod takes them all from the ConfigMap.
    for (const c of [...init, main]) assert.deepEqual(c.envFrom, [{ configMapRef: { name: configMap.metadata!.name } }], c.name);
  });

  it('probes: liveness on /healthz, readiness on /readyz, on the container port, and the app answers both', async () => {
    const port = main.ports!.find((p) => p.name === 'http')!;
    assert.equal(port.containerPort, podConfig.port);
    assert.equal(String(port.containerPort), SETTINGS.port.default);
    assert.equal(podConfig.host, '0.0.0.0');
    assert.equal(main.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(main.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(main.startupProbe?.httpGet?.path, '/healthz');
    for (const probe of [main.livenessProbe, main.readinessProbe, main.startupProbe]) assert.equal(probe?.httpGet?.port, 'http');
    assert.equal((await request(svc.app).get('/healthz')).status, 200);
    await until(async () => (await request(svc.app).get('/readyz')).status === 200, '/readyz answers 200');
    svc.lifecycle.beginShutdown();
    assert.equal((await request(svc.app).get('/readyz')).status, 503, 'readiness drops while draining');
  });

  it('the grace period outlasts the preStop pause plus the drain, and the drain the longest request', () => {
    const preStop = main.lifecycle?.preStop?.exec?.command ?? [];
    assert.equal(preStop[0], 'sleep');
    const pauseS = Number(preStop[1]);
    assert.ok(pauseS > 0 && pauseS < 30);
    const graceS = pod.terminationGracePeriodSeconds!;
    assert.ok(graceS * 1000 > pauseS * 1000 + podConfig.shutdownTimeoutMs, `grace ${graceS}s ≤ ${pauseS}s + ${podConfig.shutdownTimeoutMs}ms`);
    assert.ok(podConfig.shutdownTimeoutMs >= podConfig.requestTimeoutMs, 'the drain lets the slowest request finish');
  });

  it('runs as the image user, non-root, read-only root, no privilege escalation, all capabilities dropped', () => {
    const dockerfile = DockerfileParser.parse(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
    const imageUser = numericUser(dockerfile.getInstructions().filter((i) => i.getKeyword() === 'USER').at(-1)?.getArgumentsContent() ?? undefined)!;
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(pod.securityContext?.runAsUser, imageUser.uid);
    assert.equal(pod.securityContext?.runAsGroup, imageUser.gid);
    assert.equal(pod.automountServiceAccountToken, false);
    for (const c of [...init, main]) {
      assert.deepEqual(
        [c.securityContext?.runAsNonRoot, c.securityContext?.readOnlyRootFilesystem, c.securityContext?.allowPrivilegeEscalation, c.securityContext?.capabilities?.drop],
        [true, true, false, ['ALL']],
        c.name,
      );
      // With a read-only root, /tmp is the one writable place.
      assert.ok(mountOf(c, '/tmp') && emptyDir(mountOf(c, '/tmp')!.name), `${c.name}: /tmp is an emptyDir`);
    }
  });

  it('an init container fetches the models with the project command into a volume the server reads', () => {
    assert.equal(init.length, 1);
    const fetcher = init[0]!;
    assert.deepEqual(fetcher.command, ['node', 'dist/src/cli.js', 'models']);
    assert.match(USAGE, /cvserve models/);
    assert.equal(fetcher.image, main.image);
    const dir = podConfig.modelsDir;
    const fetchMount = mountOf(fetcher, dir)!;
    const serveMount = mountOf(main, dir)!;
    assert.ok(fetchMount && !fetchMount.readOnly, 'the init container writes the models');
    assert.ok(serveMount && serveMount.readOnly, 'the server only reads them');
    assert.equal(fetchMount.name, serveMount.name);
    assert.ok(emptyDir(serveMount.name));
    assert.equal(podConfig.modelsFetch, false, 'the server does not fetch at run time');
  });

  it('workers fit the CPU limit; the Service, HPA and PDB point at these pods', () => {
    const cpu = cpuCores(main.resources!.limits!.cpu!);
    assert.equal(cpuCores(main.resources!.requests!.cpu!), cpu);
    assert.ok(podConfig.opencvWorkers <= cpu, `${podConfig.opencvWorkers} OpenCV workers on ${cpu} CPU`);
    assert.ok(podConfig.onnxWorkers * podConfig.onnxThreads <= cpu, 'ONNX workers × threads ≤ CPU');
    assert.ok(main.resources!.requests!.memory && main.resources!.limits!.memory);

    const labels = deployment.spec!.template.metadata!.labels!;
    const matches = (selector: Record<string, string> | undefined) => !!selector && Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(matches(deployment.spec!.selector.matchLabels));
    assert.ok(matches(service.spec!.selector));
    assert.ok(matches(pdb.spec!.selector!.matchLabels));
    assert.equal(service.spec!.ports![0]!.targetPort, 'http');
    assert.deepEqual(hpa.spec!.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata!.name });
    assert.equal(hpa.spec!.metrics![0]!.resource!.name, 'cpu');
    assert.ok(hpa.spec!.minReplicas! >= 2 && (pdb.spec!.minAvailable as number) < hpa.spec!.minReplicas!, 'a drain can always evict one pod');
  });
});

function mountOf(c: IContainer, mountPath: string) {
  return c.volumeMounts?.find((m) => m.mountPath === mountPath);
}

function emptyDir(volume: string): boolean {
  return !!pod.volumes?.find((v) => v.name === volume)?.emptyDir;
}

function cpuCores(q: string | number): number {
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}
