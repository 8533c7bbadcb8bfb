import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { configJsonSchema } from '../core/config/json-schema.js';

const root = process.cwd();

async function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  return ajv.compile(await configJsonSchema());
}

describe('JSON Schema of mta.config.yaml', () => {
  it('validates the shipped config', async () => {
    const validate = await validator();
    const shipped = parse(readFileSync(join(root, 'mta.config.yaml'), 'utf8'));
    assert.equal(validate(shipped), true, JSON.stringify(validate.errors, null, 2));
  });

  it('rejects a typo in a plugin option and in a core key', async () => {
    const validate = await validator();
    const shipped = parse(readFileSync(join(root, 'mta.config.yaml'), 'utf8'));
    const typo = structuredClone(shipped);
    typo.plugins = [{ name: 'relay-access', options: { relayNetwork: ['10.0.0.0/8'] } }, { name: 'queue-spool' }];
    assert.equal(validate(typo), false);
    assert.ok(validate.errors?.some((e) => e.keyword === 'additionalProperties' && e.params.additionalProperty === 'relayNetwork'), JSON.stringify(validate.errors));
    const core = structuredClone(shipped);
    core.server.localDomians = ['x'];
    assert.equal(validate(core), false);
    const badName = structuredClone(shipped);
    badName.plugins = [{ name: 'relay-acess' }];
    assert.equal(validate(badName), false);
  });

  it('is what docs/mta.config.schema.json holds (run `npm run schema` after changing options)', async () => {
    const committed = JSON.parse(readFileSync(join(root, 'docs', 'mta.config.schema.json'), 'utf8'));
    assert.deepEqual(committed, await configJsonSchema());
  });

  it('is named by the shipped config for editors', () => {
    const firstLine = readFileSync(join(root, 'mta.config.yaml'), 'utf8').split('\n')[0];
    assert.equal(firstLine, '# yaml-language-server: $schema=./docs/mta.config.schema.json');
  });
});
