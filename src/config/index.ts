/**
 * The only place that reads the environment and the only place defaults live. Each command parses its
 * flags through one of these schemas at the top of its action; a failure lists every bad field and
 * exits 2.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../cli/errors.js';

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

export const envSchema = z.object({
  HOME: z.string().default(os.homedir()),
  KUBECONFIG: optionalText,
  NO_COLOR: optionalText,
  XDG_CACHE_HOME: optionalText,
  XDG_STATE_HOME: optionalText,
  /** Where the sandbox keeps its state (default: $XDG_STATE_HOME/codemate/sandbox). */
  CODEMATE_STATE_DIR: optionalText,
  /** Prebuilt control-plane binaries; skips the Go build. */
  CODEMATE_BIN_DIR: optionalText,
  /** Cache for built binaries (default: $XDG_CACHE_HOME/codemate). */
  CODEMATE_CACHE_DIR: optionalText,
});
export type Env = z.infer<typeof envSchema>;

/** Parses the process environment once, at start-up. */
export function readEnv(raw: NodeJS.ProcessEnv = process.env): Env {
  return parseOrUsage(envSchema, raw, 'environment');
}

export const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

/** Parses `input` or throws a UsageError naming each bad field. */
export function parseOrUsage<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const field = issue.path.map(String).join('.') || what;
    return `  ${flagName(field)}: ${issue.message}`;
  });
  throw new UsageError(`invalid ${what}:\n${lines.join('\n')}`);
}

function flagName(field: string): string {
  if (/^[A-Z_]+$/.test(field)) return field;
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function cacheDir(env: Env): string {
  return env.CODEMATE_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(env.HOME, '.cache'), 'codemate');
}

export function defaultStateDir(env: Env): string {
  return (
    env.CODEMATE_STATE_DIR ??
    path.join(env.XDG_STATE_HOME ?? path.join(env.HOME, '.local', 'state'), 'codemate', 'sandbox')
  );
}

export const devFlagsSchema = z.object({
  stateDir: z.string().min(1).optional(),
  apiserverPort: port.optional(),
  purge: z.boolean().default(false),
  output: z.enum(['text', 'json']).default('text'),
});
export type DevFlags = z.infer<typeof devFlagsSchema>;

export interface DevConfig {
  stateDir: string;
  cacheDir: string;
  binDir: string | undefined;
  apiserverPort: number | undefined;
  purge: boolean;
  output: 'text' | 'json';
}

export function devConfig(env: Env, rawFlags: Record<string, unknown>): DevConfig {
  const flags = parseOrUsage(devFlagsSchema, rawFlags, 'flags');
  return {
    stateDir: path.resolve(flags.stateDir ?? defaultStateDir(env)),
    cacheDir: cacheDir(env),
    binDir: env.CODEMATE_BIN_DIR,
    apiserverPort: flags.apiserverPort,
    purge: flags.purge,
    output: flags.output,
  };
}
