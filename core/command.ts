// Command templates from configs: `{name}` placeholders filled in, one argument stays one argument.
import { BadInputError } from './errors.js';

/** Fills `{name}` placeholders; an unknown placeholder is an error, never passed on literally. */
export function fillCommand(template: readonly string[], values: Record<string, string>): string[] {
  return template.map((arg) =>
    arg.replace(/\{([a-z_]+)\}/g, (_, name: string) => {
      const value = values[name];
      if (value === undefined) throw new BadInputError(`command template ${JSON.stringify(template)}: unknown placeholder {${name}} (known: ${Object.keys(values).join(', ')})`);
      return value;
    }),
  );
}

/** Placeholders a template uses that are not in `known`: for config validation. */
export function unknownPlaceholders(template: readonly string[], known: readonly string[]): string[] {
  return template.flatMap((arg) => [...arg.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1] as string)).filter((name) => !known.includes(name));
}
