/**
 * Reads the configuration: defaults, then the config file (if any), then the command line, each
 * overriding the one before. Every value is checked against the schema; a bad value is a
 * ConfigError naming the option and where it came from.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../errors';
import { Config, defaults, OptionName, optionSpecs, OptionSpec } from './options';

export class ConfigError extends InvalidArgumentError {}

export interface MediaInterface {
  name: string;
  address: string;
  /** The address written into SDP (after '!'), or the bound one. */
  advertised: string;
}

function isOption(name: string): name is OptionName {
  return Object.prototype.hasOwnProperty.call(optionSpecs, name);
}

function convert(name: OptionName, raw: string | boolean | string[], origin: string): Config[OptionName] {
  const spec: OptionSpec = optionSpecs[name];
  const where = `${origin}: ${name}`;
  if (spec.type === 'list') {
    const items = (Array.isArray(raw) ? raw : [String(raw)]).flatMap((v) => v.split(/[;,]/)).map((v) => v.trim());
    return items.filter((v) => v.length > 0);
  }
  if (spec.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    const v = String(raw).toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    throw new ConfigError(`${where} must be true or false, not '${String(raw)}'`);
  }
  const text = Array.isArray(raw) ? raw[raw.length - 1] : String(raw);
  if (spec.type === 'integer') {
    if (!/^-?\d+$/.test(text.trim())) throw new ConfigError(`${where} must be an integer, not '${text}'`);
    const n = Number(text);
    if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
      throw new ConfigError(`${where} must be in ${spec.min}..${spec.max}, not ${n}`);
    }
    return n;
  }
  if (spec.choices && !spec.choices.includes(text)) {
    throw new ConfigError(`${where} must be one of ${spec.choices.join(', ')}, not '${text}'`);
  }
  return text;
}

/** Parses an rtpengine-style INI file: `[section]` headers, `key = value` lines, `#`/`;` comments. */
export function parseConfigFile(text: string, section: string, origin: string): Partial<Config> {
  const out: Record<string, unknown> = {};
  let current = '';
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      current = header[1].trim();
      return;
    }
    if (current !== section) return;
    const eq = trimmed.indexOf('=');
    if (eq < 0) throw new ConfigError(`${origin}:${i + 1}: expected 'key = value'`);
    const key = trimmed.slice(0, eq).trim();
    if (!isOption(key)) throw new ConfigError(`${origin}:${i + 1}: unknown option '${key}'`);
    out[key] = convert(key, trimmed.slice(eq + 1).trim(), `${origin}:${i + 1}`);
  });
  return out as Partial<Config>;
}

function parseFlags(argv: string[]): Partial<Config> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(optionSpecs)) {
    options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string', multiple: spec.type === 'list' };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(parsed.values)) {
    if (isOption(name) && value !== undefined) out[name] = convert(name, value as string | boolean | string[], 'command line');
  }
  return out as Partial<Config>;
}

/** Defaults < config file < flags. */
export function loadConfig(argv: string[]): Config {
  const flags = parseFlags(argv);
  const config = defaults();
  const file = flags['config-file'] ?? '';
  if (file !== '' && file !== 'none') {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
    }
    Object.assign(config, parseConfigFile(text, flags['config-section'] ?? config['config-section'], file));
  }
  Object.assign(config, flags);
  if (config['port-min'] > config['port-max']) throw new ConfigError('port-min must not exceed port-max');
  return config;
}

/** Parses `[NAME/]IP[!ADVERTISED]` interface specs. */
export function mediaInterfaces(config: Config): MediaInterface[] {
  return config.interface.map((spec, i) => {
    const m = /^(?:([^/]+)\/)?([^!]+)(?:!(.+))?$/.exec(spec);
    if (!m) throw new ConfigError(`interface '${spec}' is not [NAME/]IP[!IP]`);
    return { name: m[1] ?? (i === 0 ? 'default' : `if${i}`), address: m[2], advertised: m[3] ?? m[2] };
  });
}
