'use strict';
// Shared by both client generations' contract tests: where the captured bodies
// and the pacts live, the caller's session as the provider will fill it in, and
// the matchers for what every answer must look like.

const fs = require('node:fs');
const path = require('node:path');
// Pact's libraries send anonymous usage events unless told not to; this project sends none.
process.env.PACT_DO_NOT_TRACK = 'true';
const { PactV4, MatchersV3: M, SpecificationVersion } = require('@pact-foundation/pact');

const ROOT = path.resolve(__dirname, '..', '..', '..');
// The captured requests and Upgrades, as the project keeps them (copied once from
// Harvester): the package data in bff/captured/{clients,upgrades}/.
const CAPTURED = path.join(ROOT, 'bff', 'captured');
const PACTS = path.join(ROOT, 'contracts', 'pacts');
const PROVIDER = 'harvester-upgrade-bff';
const NAMESPACE = 'harvester-system';

function captured(kind, name) {
  return JSON.parse(fs.readFileSync(path.join(CAPTURED, kind, name), 'utf8'));
}

function pactFor(consumer) {
  // Pact merges into an existing file; start this consumer's pact afresh so an
  // interaction removed from the tests cannot linger (npm test also clears the folder).
  fs.rmSync(path.join(PACTS, `${consumer}-${PROVIDER}.json`), { force: true });
  return new PactV4({
    consumer,
    provider: PROVIDER,
    dir: PACTS,
    spec: SpecificationVersion.SPECIFICATION_VERSION_V4,
    logLevel: process.env.PACT_LOG_LEVEL || 'warn',
  });
}

// The dashboard's session: R_SESS carries the token, CSRF its double-submit twin.
// The token comes from the provider state ("the caller is a viewer", ...), so the
// pact never hard-codes a provider's credentials.
const CSRF = 'a3f1c9e07b';
const EXAMPLE_TOKEN = 'token-example:0123456789abcdef';

function session(method, { body = false } = {}) {
  const headers = {
    Accept: 'application/json',
    Cookie: M.fromProviderState(`R_SESS=\${token}; CSRF=${CSRF}`, `R_SESS=${EXAMPLE_TOKEN}; CSRF=${CSRF}`),
  };
  if (method !== 'GET') headers['X-API-CSRF'] = CSRF;
  if (body) headers['Content-Type'] = 'application/json';
  return headers;
}

const JSON_TYPE = M.regex(/^application\/json(;.*)?$/, 'application/json; charset=utf-8');
const CONDITION_STATUS = M.regex(/^(True|False|Unknown)$/, 'True');
const NAME = /[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/.source;

/** Steve's error shape, which every error answer must have. */
function steveError(status, code, message) {
  return {
    type: M.equal('error'),
    status: M.equal(status),
    code: M.equal(code),
    message: M.string(message),
  };
}

/** A Steve resource for an Upgrade: what both generations read from any answer. */
function upgradeResource(example, { readMessage, upgradeState, conditions, links, actions } = {}) {
  const { namespace, name } = example.metadata;
  const labels = {
    [`harvesterhci.io/upgradeState`]: upgradeState || M.string(example.metadata.labels['harvesterhci.io/upgradeState']),
  };
  if (readMessage) labels['harvesterhci.io/read-message'] = M.equal('true');
  const resource = {
    id: M.regex(new RegExp(`^${NAME}/${NAME}$`), `${namespace}/${name}`),
    type: M.equal('harvesterhci.io.upgrade'),
    apiVersion: M.equal('harvesterhci.io/v1beta1'),
    kind: M.equal('Upgrade'),
    metadata: {
      name: M.equal(name),
      namespace: M.equal(namespace),
      resourceVersion: M.regex(/^[0-9]+$/, '123457'),
      uid: M.uuid('7d4c8f0e-2b7a-4a57-9f3e-1c2d3e4f5a6b'),
      labels,
    },
    spec: { version: M.string(example.spec.version) },
    status: {
      conditions:
        conditions ||
        M.eachLike({ type: M.string('Completed'), status: CONDITION_STATUS }),
    },
  };
  if (links) resource.links = links;
  if (actions) resource.actions = actions;
  return resource;
}

/** A list of conditions that must include `type` with `status`, each condition well-formed. */
function conditionsIncluding(type, status) {
  return M.arrayContaining({ type: M.equal(type), status: M.equal(status) });
}

module.exports = {
  M,
  NAMESPACE,
  NAME,
  CSRF,
  EXAMPLE_TOKEN,
  JSON_TYPE,
  captured,
  pactFor,
  session,
  steveError,
  upgradeResource,
  conditionsIncluding,
};
