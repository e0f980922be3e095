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
  '\\.\\./src/(types|errors|ids|duration)',
  '\\.\\./src/spec/(schema|validate)',
  '\\.\\./src/dag/[^/]+',
  // The payload converter: loaded into the sandbox by every worker already (scoped values).
  '\\.\\./src/codec/payload-converter',
  // Pure state modules of entity workflows: keep them free of Node and I/O (the bundle check catches it).
  '\\.\\./src/changegroup/state',
  '\\.\\./src/registry/state',
  '\\.\\./src/fleet/(schema|validate|plan|records|types|sha256|ids)',
  // Runner proofs: canonical statements and Ed25519 verification in plain JavaScript (@noble/curves).
  '\\.\\./src/security/(runner-proof|statements)',
];

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
                'workflows/*, zod and the sandbox-safe src files (types, errors, ids, duration, spec/schema, ' +
                'spec/validate, dag/*). Use `import type` for anything else.',
            },
          ],
        },
      ],
    },
  },
);
