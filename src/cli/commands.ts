import { buildConfig, loadConfigFile } from '../config/load.js';
import { endpointsCommand, eventsCommand, publishCommand } from './api-commands.js';
import { BACKUP_USAGE, backupCommand } from './backup-command.js';
import { EXIT, type Command } from './command.js';
import { MIGRATE_USAGE, migrateCommand } from './migrate-command.js';
import { configPath, SERVE_USAGE } from './serve-args.js';
import { tailCommand } from './tail-command.js';
import { TOKEN_USAGE, tokenCommand } from './token-command.js';
import { webhooksCommand } from './webhooks-command.js';

/** `serve` is run by src/cli/main.ts itself: it owns the process (signals, exit, cluster workers). */
export const SERVE: Omit<Command, 'run'> = {
  name: 'serve',
  summary: 'start Herald (the default when no command is given)',
  usage: SERVE_USAGE,
};

const token: Command = {
  name: 'token',
  summary: 'mint a development JWT for subscribers',
  usage: TOKEN_USAGE,
  async run(argv, ctx) {
    const path = configPath(argv, ctx.env);
    const config = buildConfig(path ? loadConfigFile(path) : {}, ctx.env);
    ctx.out(await tokenCommand(argv, config, ctx.env.HERALD_JWT_SECRET || undefined));
    return EXIT.ok;
  },
};

const backup: Command = {
  name: 'backup',
  summary: 'copy the SQLite log of a running Herald',
  usage: BACKUP_USAGE,
  async run(argv, ctx) {
    const path = configPath(argv, ctx.env);
    const config = buildConfig(path ? loadConfigFile(path) : {}, ctx.env);
    const r = await backupCommand(argv, config);
    ctx.out(`backed up ${r.source} to ${r.destination} (${r.pages} pages)`);
    return EXIT.ok;
  },
};

const migrate: Command = {
  name: 'migrate',
  summary: 'apply the Postgres schema steps and exit',
  usage: MIGRATE_USAGE,
  async run(argv, ctx) {
    const path = configPath(argv, ctx.env);
    const config = buildConfig(path ? loadConfigFile(path) : {}, ctx.env);
    const r = await migrateCommand(argv, config);
    ctx.out(r.applied.length > 0 ? `schema "${r.schema}": applied ${r.applied.join(', ')}` : `schema "${r.schema}": up to date`);
    return EXIT.ok;
  },
};

/** Every command but `serve` and `help`, in the order `herald help` lists them. */
export const COMMANDS: readonly Command[] = [
  publishCommand,
  tailCommand,
  eventsCommand,
  endpointsCommand,
  webhooksCommand,
  token,
  backup,
  migrate,
];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export const HELP_USAGE = `usage: herald help [COMMAND]
Lists the commands, or prints one command's usage (as \`herald COMMAND --help\` does).`;

/** What `herald help` and `herald --help` print. */
export function helpText(): string {
  const rows = [SERVE, ...COMMANDS, { name: 'help', summary: 'this list, or a command\'s usage' }];
  const width = Math.max(...rows.map((r) => r.name.length));
  return [
    'usage: herald [COMMAND] [ARGS]',
    '',
    ...rows.map((r) => `  ${r.name.padEnd(width)}   ${r.summary}`),
    '',
    'herald COMMAND --help prints its usage. Commands that talk to a running Herald take',
    '--url (default HERALD_URL, else http://127.0.0.1:8080) and --key (default HERALD_API_KEY).',
    'Exit codes: 0 done, 1 Herald answered with an error (its code is printed), 2 wrong usage',
    'or config, 3 Herald did not answer. Guide: docs/cli.md.',
  ].join('\n');
}
