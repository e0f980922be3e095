// @ts-check
import tseslint from 'typescript-eslint';

/**
 * What a workflow may import as a value: the SDK's workflow package, its sibling workflow files,
 * and the pure, sandbox-safe part of src/. Anything else must be `import type` (erased at build).
 * The workflow bundle (scripts/bundle-workflows.ts) catches what lint cannot: a forbidden module
 * several packages deep.
 */
const WORKFLOW_SAFE_IMPORTS = [
  '@temporalio/workflow',
  'zod',
  '\\./(?!\\.\\.?/).*', // a file inside workflows/ (not ./../ escaping it)
  // From a workflow's own folder (workflows/run/): the workflows' contracts one level up, and the
  // check every workflow makes of the state a start may not carry.
  '\\.\\./([\\w-]+-messages|start-checks)',
  '(?:\\.\\./)+src/(types|errors|failures|ids|duration|search-attributes|metrics)',
  '(?:\\.\\./)+src/spec/(schema|validate)',
  '(?:\\.\\./)+src/dag/[^/]+',
  // Pure task transitions, task outputs, the queued-task margin and the patch names of the run workflow.
  '(?:\\.\\./)+src/run/(transitions|outputs|queued|patches)',
  // The payload converter: loaded into the sandbox by every worker already (scoped values).
  '(?:\\.\\./)+src/codec/payload-converter',
  // Pure state modules of entity workflows: keep them free of Node and I/O (the bundle check catches it).
  '(?:\\.\\./)+src/changegroup/state',
  '(?:\\.\\./)+src/registry/(state|types)',
  '(?:\\.\\./)+src/fleet/(schema|validate|plan|records|types|ids)',
  // Runner proofs: canonical statements and Ed25519 verification in plain JavaScript (@noble/curves).
  '(?:\\.\\./)+src/security/(runner-proof|statements)',
];

/**
 * Layering, lowest first: domain (src/, but for the client library and the CLI) → workflow contracts
 * (workflows' messages files) → activities → workflows → workers and the client library (src/client)
 * → the CLI (src/cli). A file imports its own layer and lower ones; type-only imports count too,
 * since a type imported from above ties the lower layer to the upper one's changes. Contracts (each
 * workflow's signals, queries, updates and their types) sit below activities: an activity that
 * queries or signals a workflow needs its contract, never its code. Workers may use the client
 * library (a runner agent registers through it); the client library never imports workers. Nothing
 * outside test/, bench/ and scripts/ imports them. Relative specifiers only: packages are not layers.
 */
const UP = '^(?:\\./|(?:\\.\\./)+)';
const TARGETS = {
  activities: `${UP}activities(?:/|$)`,
  workflows: `${UP}workflows(?:/|$)`,
  // A workflow's code, not its contract (`*-messages.ts`); from a contract, a sibling such as `./fleet`.
  workflowCode: `${UP}workflows/(?!(?:[\\w-]+/)*[\\w-]+-messages$)`,
  siblingCode: `^\\./(?![\\w-]+-messages$)[\\w-]+$`,
  workers: `${UP}workers(?:/|$)`,
  client: `${UP}(?:src/)?client(?:/|$)`,
  cli: `${UP}(?:src/)?cli(?:/|$)`,
  tooling: `${UP}(?:test|bench|scripts)(?:/|$)`,
};
const CONTRACT_FILES = ['workflows/**/*-messages.ts'];
const LAYERS = [
  {
    name: 'domain',
    files: ['src/**/*.ts'],
    ignores: ['src/client/**', 'src/cli/**'],
    forbidden: ['workflows', 'activities', 'workers', 'client', 'cli', 'tooling'],
  },
  {
    name: 'a workflow contract',
    files: CONTRACT_FILES,
    forbidden: ['siblingCode', 'workflowCode', 'activities', 'workers', 'client', 'cli', 'tooling'],
  },
  {
    name: 'activities',
    files: ['activities/**/*.ts'],
    forbidden: ['workflowCode', 'workers', 'client', 'cli', 'tooling'],
  },
  {
    name: 'workflows',
    files: ['workflows/**/*.ts'],
    ignores: CONTRACT_FILES,
    forbidden: ['workers', 'client', 'cli', 'tooling'],
  },
  { name: 'workers', files: ['workers/**/*.ts'], forbidden: ['cli', 'tooling'] },
  { name: 'the client library', files: ['src/client/**/*.ts'], forbidden: ['workers', 'cli', 'tooling'] },
  { name: 'the CLI', files: ['src/cli/**/*.ts'], forbidden: ['tooling'] },
];
const NAMES = {
  activities: 'activities',
  workflows: 'workflows',
  workflowCode: "a workflow's code (import its *-messages.ts contract instead)",
  siblingCode: "a workflow's code (a contract holds definitions and types only)",
  workers: 'workers',
  client: 'the client library',
  cli: 'the CLI',
  tooling: 'test, bench or scripts tooling',
};
const layerBlocks = LAYERS.map(({ name, files, ignores, forbidden }) => ({
  files,
  ...(ignores ? { ignores } : {}),
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((target) => ({
          regex: TARGETS[target],
          message: `layering: ${name} must not import ${NAMES[target]} (domain → contracts → activities → workflows → workers / client → CLI). Move what both need down.`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', '.tools/', '.runfleet/', 'coverage/', '.bench/'],
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    languageOptions: {
      parserOptions: {
        projectService: {
          // Root config files are outside tsconfig.json's `include`.
          allowDefaultProject: ['vitest.config.ts'],
          defaultProject: './tsconfig.json',
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // The edges that own a terminal: the CLI, scripts, benchmarks and tests.
    files: ['src/cli/**', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  ...layerBlocks,
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(?!(${WORKFLOW_SAFE_IMPORTS.join('|')})$)`,
              allowTypeImports: true,
              message:
                'Workflows run in a deterministic sandbox: value imports only from @temporalio/workflow, ' +
                'workflows/*, zod and the sandbox-safe src files (types, errors, failures, ids, duration, spec/schema, ' +
                'spec/validate, dag/*). Use `import type` for anything else.',
            },
          ],
        },
      ],
    },
  },
);
