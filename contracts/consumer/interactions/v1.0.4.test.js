'use strict';
// Dashboard extension v1.0.2–v1.0.4: save() PUTs the whole object with status
// stripped, to the Steve path it always used (the Ingress sends that to the
// BFF), to Rancher's proxied form of it, or to the BFF's /api/v1.0.4. It needs
// 200, the message marked read, the status still there, and whether a write
// happened; and it must cope with Steve's 409, 403 and 401.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Session, SteveError, v104 } = require('../src/extension');
const {
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
} = require('./support');

const pact = pactFor('harvester-ui-extension-v1.0.4');

// The model the browser holds (the whole Steve object, as v1.0.5 sends it back),
// without the label the click adds.
function modelOf(steveObject) {
  const model = structuredClone(steveObject);
  delete model.metadata.labels['harvesterhci.io/read-message'];
  return model;
}

const CAPTURED = captured('clients', 'v1.0.4-dismiss-put-body.json');
const FINISHED = modelOf(captured('clients', 'v1.0.5-dismiss-put-body.json'));
const IN_PROGRESS = {
  id: 'harvester-system/hvst-upgrade-zjft7',
  type: 'harvesterhci.io.upgrade',
  ...captured('upgrades', 'upgrade-in-progress.json'),
};

/** The PUT body v1.0.4 sends, as matchers: what the BFF may rely on, not incidental values. */
function putBody(body) {
  const meta = body.metadata;
  return {
    id: M.regex(new RegExp(`^${NAME}/${NAME}$`), body.id),
    type: M.equal('harvesterhci.io.upgrade'),
    apiVersion: M.equal('harvesterhci.io/v1beta1'),
    kind: M.equal('Upgrade'),
    metadata: {
      // name and namespace must match the URL; the BFF refuses a body that does not.
      name: M.equal(meta.name),
      namespace: M.equal(meta.namespace),
      generateName: M.string(meta.generateName),
      resourceVersion: M.regex(/^[0-9]+$/, meta.resourceVersion),
      annotations: M.eachValueMatches(meta.annotations, M.string('true')),
      labels: {
        ...Object.fromEntries(
          Object.entries(meta.labels)
            .filter(([key]) => key !== 'harvesterhci.io/read-message')
            .map(([key, value]) => [key, M.string(value)]),
        ),
        'harvesterhci.io/read-message': M.equal('true'),
      },
    },
    spec: {
      image: M.string(body.spec.image),
      logEnabled: M.boolean(body.spec.logEnabled),
      version: M.regex(/^v[0-9]+\.[0-9]+\.[0-9]+/, body.spec.version),
    },
  };
}

function finishedAnswer(links) {
  return upgradeResource(FINISHED, {
    readMessage: true,
    upgradeState: M.regex(/^(Succeeded|Failed)$/, 'Succeeded'),
    conditions: conditionsIncluding('Completed', 'True'),
    links,
  });
}

const CHANGED = M.regex(/^(true|false)$/, 'true');
const STEVE = '/v1/harvester/harvesterhci.io.upgrades';
const self = (prefix, obj) => `${prefix}/${obj.metadata.namespace}/${obj.metadata.name}`;

test('the client model sends exactly the captured v1.0.4 body', () => {
  const model = FINISHED;
  const sent = v104.cleanForSave({
    ...model,
    metadata: { ...model.metadata, labels: { ...model.metadata.labels, 'harvesterhci.io/read-message': 'true' } },
  });
  assert.deepEqual(sent, CAPTURED);
  assert.equal('status' in sent, false);
});

const dismissPaths = [
  ['the BFF\'s v1.0.4 path', self('/api/v1.0.4/upgrades', FINISHED), null],
  ['the Steve path', self(STEVE, FINISHED), null],
  [
    'Rancher\'s proxied Steve path',
    self(`/k8s/clusters/c-m-4x8kq2zp${STEVE}`, FINISHED),
    M.regex(new RegExp(`^/k8s/clusters/${NAME}${STEVE.replaceAll('.', '\\.')}/${NAME}/${NAME}$`),
      self(`/k8s/clusters/c-m-4x8kq2zp${STEVE}`, FINISHED)),
  ],
];

for (const [where, url, pathMatcher] of dismissPaths) {
  test(`save() on a finished upgrade through ${where}: 200, read, status kept`, async () => {
    await pact
      .addInteraction()
      .given('a finished upgrade exists', { namespace: NAMESPACE, name: FINISHED.metadata.name })
      .given('the caller may dismiss upgrades')
      .uponReceiving(`a v1.0.4 dismiss PUT to ${where}`)
      .withRequest('PUT', pathMatcher || url, (b) => b.headers(session('PUT', { body: true })).jsonBody(putBody(CAPTURED)))
      .willRespondWith(200, (b) =>
        b
          .headers({ 'Content-Type': JSON_TYPE, 'X-Upgrade-Bff-Changed': CHANGED })
          .jsonBody(finishedAnswer({ self: M.string(url), update: M.string(url) })),
      )
      .executeTest(async (mock) => {
        const tab = new Session(mock.url, { token: EXAMPLE_TOKEN, csrf: CSRF });
        const { upgrade, changed } = await v104.dismiss(tab, FINISHED, url);
        assert.equal(upgrade.metadata.labels['harvesterhci.io/read-message'], 'true');
        assert.equal(upgrade.metadata.labels['harvesterhci.io/upgradeState'], 'Succeeded');
        assert.ok(upgrade.status.conditions.some((c) => c.type === 'Completed' && c.status === 'True'));
        assert.equal(typeof changed, 'boolean');
      });
  });
}

test('listing the upgrades on the Steve path to find the latest', async () => {
  await pact
    .addInteraction()
    .given('a finished upgrade exists', { namespace: NAMESPACE, name: FINISHED.metadata.name })
    .given('the caller may dismiss upgrades')
    .uponReceiving('a v1.0.4 list of upgrades on the Steve path')
    .withRequest('GET', STEVE, (b) => b.headers(session('GET')))
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody({
        type: M.equal('collection'),
        resourceType: M.equal('harvesterhci.io.upgrade'),
        // At least the latest upgrade, with its state and conditions.
        data: M.arrayContaining({
          id: M.regex(new RegExp(`^${NAME}/${NAME}$`), `${NAMESPACE}/${FINISHED.metadata.name}`),
          type: M.equal('harvesterhci.io.upgrade'),
          metadata: {
            name: M.string(FINISHED.metadata.name),
            namespace: M.string(NAMESPACE),
            labels: {
              'harvesterhci.io/latestUpgrade': M.equal('true'),
              'harvesterhci.io/upgradeState': M.string('Succeeded'),
            },
          },
          status: { conditions: M.eachLike({ type: M.string('Completed'), status: M.regex(/^(True|False|Unknown)$/, 'True') }) },
        }),
      }),
    )
    .executeTest(async (mock) => {
      const tab = new Session(mock.url, { token: EXAMPLE_TOKEN, csrf: CSRF });
      const latest = await v104.latestUpgrade(tab, STEVE);
      assert.equal(latest.metadata.name, FINISHED.metadata.name);
    });
});

test('save() on an upgrade still in progress: 409 UpgradeInProgress', async () => {
  const url = self(STEVE, IN_PROGRESS);
  await pact
    .addInteraction()
    .given('an upgrade is in progress', { namespace: NAMESPACE, name: IN_PROGRESS.metadata.name })
    .given('the caller may dismiss upgrades')
    .uponReceiving('a v1.0.4 dismiss PUT of an upgrade in progress')
    .withRequest('PUT', url, (b) =>
      b.headers(session('PUT', { body: true })).jsonBody(putBody(v104.cleanForSave({
        ...IN_PROGRESS,
        metadata: { ...IN_PROGRESS.metadata, labels: { ...IN_PROGRESS.metadata.labels, 'harvesterhci.io/read-message': 'true' } },
      }))),
    )
    .willRespondWith(409, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE })
        .jsonBody(steveError(409, 'UpgradeInProgress', 'the upgrade is still in progress')),
    )
    .executeTest(async (mock) => {
      const tab = new Session(mock.url, { token: EXAMPLE_TOKEN, csrf: CSRF });
      const error = await v104.dismiss(tab, IN_PROGRESS, url).catch((e) => e);
      assert.ok(error instanceof SteveError);
      assert.equal(error.status, 409);
      assert.equal(error.code, 'UpgradeInProgress');
    });
});

const refusals = [
  ['the caller is a viewer', 403, 'Forbidden', 'a viewer'],
  ["the caller's session has expired", 401, 'Unauthorized', 'an expired session'],
];

for (const [callerState, status, code, who] of refusals) {
  test(`save() by ${who}: ${status} in Steve's error shape`, async () => {
    const url = self(STEVE, FINISHED);
    await pact
      .addInteraction()
      .given('a finished upgrade exists', { namespace: NAMESPACE, name: FINISHED.metadata.name })
      .given(callerState)
      .uponReceiving(`a v1.0.4 dismiss PUT by ${who}`)
      .withRequest('PUT', url, (b) => b.headers(session('PUT', { body: true })).jsonBody(putBody(CAPTURED)))
      .willRespondWith(status, (b) =>
        b.headers({ 'Content-Type': JSON_TYPE }).jsonBody(steveError(status, code, 'refused')),
      )
      .executeTest(async (mock) => {
        const tab = new Session(mock.url, { token: EXAMPLE_TOKEN, csrf: CSRF });
        const error = await v104.dismiss(tab, FINISHED, url).catch((e) => e);
        assert.ok(error instanceof SteveError, String(error));
        assert.equal(error.status, status);
        assert.equal(error.code, code);
      });
  });
}
