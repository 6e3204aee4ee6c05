import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

type Node = Record<string, unknown>;

/** Every ```yaml block of the README and docs/, with where it is. */
const BLOCKS = [
  join(ROOT, 'README.md'),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(ROOT, 'docs', name)),
].flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((match) => ({
    where: relative(ROOT, file),
    text: match[1]!,
  })),
);

/** The documents of a block, parsed (a block may hold several, split by ---). */
const documents = (text: string) => loadAll(text) as Node[];

/** The GitHub Actions jobs of the examples that take AWS credentials. */
const awsJobs = () =>
  BLOCKS.flatMap(({ where, text }) =>
    documents(text)
      .flatMap((doc) => Object.values((doc.jobs ?? {}) as Record<string, Node>))
      .filter((job) =>
        (job.steps as Node[]).some((step) => String(step.uses).startsWith('aws-actions/configure-aws-credentials@')),
      )
      .map((job) => ({ where, job })),
  );

describe("the docs' YAML examples", () => {
  it('parse, every ```yaml block of the README and docs/', () => {
    expect(BLOCKS.length).toBeGreaterThanOrEqual(3);
    const broken = BLOCKS.flatMap(({ where, text }) => {
      try {
        documents(text);
        return [];
      } catch (error) {
        return [`${where}: ${(error as Error).message.split('\n')[0]}`];
      }
    });
    expect(broken).toEqual([]);
  });

  it("Kubernetes Job: reads the bucket with its service account's role, no volume holding the files", () => {
    const docs = BLOCKS.flatMap(({ text }) => documents(text));
    const job = docs.find((doc) => doc.kind === 'Job') as Node;
    const pod = ((job.spec as Node).template as Node).spec as Node;
    const account = docs.find(
      (doc) => doc.kind === 'ServiceAccount' && (doc.metadata as Node).name === pod.serviceAccountName,
    ) as Node;
    expect(((account.metadata as Node).annotations as Node)['eks.amazonaws.com/role-arn']).toMatch(
      /^arn:aws:iam::\d{12}:role\//,
    );
    const [container] = pod.containers as Node[];
    const command = container!.command as string[];
    // The inputs: every argument after `upload` that is neither an option nor an option's value.
    const valued = new Set(['--entity-from', '--org', '--env', '--shard', '--rate-total', '--journal', '--report']);
    const inputs = command.slice(2).filter((arg, i, args) => !arg.startsWith('--') && !valued.has(args[i - 1]!));
    expect(inputs.length).toBeGreaterThan(0);
    expect(inputs.filter((input) => !input.startsWith('s3://'))).toEqual([]);
    expect(command).not.toContain('--manifest');
    // A volume may keep the journal and the report, nothing else: no mounted path is read from.
    const kept = command.filter((_, i) => ['--journal', '--report'].includes(command[i - 1]!));
    for (const { mountPath } of (container!.volumeMounts ?? []) as Array<{ mountPath: string }>) {
      expect(command.filter((arg) => arg.startsWith(mountPath) && !kept.includes(arg))).toEqual([]);
    }
    // No AWS key in the pod: the role comes from the service account.
    const names = ((container!.env ?? []) as Array<{ name: string }>).map((variable) => variable.name);
    expect(names.filter((name) => /^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)$/.test(name))).toEqual([]);
  });

  it("GitHub Actions: the README's recipe and the matrix read the bucket through OIDC (id-token: write, role-to-assume)", () => {
    const jobs = awsJobs();
    expect(jobs.map(({ where }) => where).sort()).toEqual(['README.md', 'docs/many-machines.md']);
    for (const { job } of jobs) {
      expect((job.permissions as Node)['id-token']).toBe('write');
      const steps = job.steps as Node[];
      const credentials = steps.find((step) => String(step.uses).startsWith('aws-actions/configure-aws-credentials@'))!;
      expect(credentials.uses).toBe('aws-actions/configure-aws-credentials@v4');
      expect((credentials.with as Node)['role-to-assume']).toMatch(/^arn:aws:iam::\d{12}:role\//);
      const upload = steps.findIndex((step) => String(step.run).includes('u21-media upload s3://'));
      // The credentials are in place before the upload reads the bucket, and no AWS key comes from a secret.
      expect(upload).toBeGreaterThan(steps.indexOf(credentials));
      expect(JSON.stringify(steps)).not.toMatch(/AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)/);
    }
  });
});
