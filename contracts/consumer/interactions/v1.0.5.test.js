'use strict';
// Dashboard extension v1.0.5 against the BFF's /api/v1.0.5: it reads the
// upgrade and its action URLs, then POSTs ?action=dismiss or ?action=cancel.
// Its own save() (the whole object, status included) goes to the same API.
// It must cope with Steve's 409, 403 and 401.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Session, SteveError, v105 } = require('../src/extension');
const {
  M,
  NAMESPACE,
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

const pact = pactFor('harvester-ui-extension-v1.0.5');

const API = '/api/v1.0.5/upgrades';
const CAPTURED = captured('clients', 'v1.0.5-dismiss-put-body.json');

/** A resource as the BFF's v1.0.5 API shapes it: links and actions point at /api/v1.0.5. */
function asServed(obj) {
  const { namespace, name } = obj.metadata;
  const self = `${API}/${namespace}/${name}`;
  const model = structuredClone(obj);
  delete model.metadata.labels['harvesterhci.io/read-message'];
  model.id = `${namespace}/${name}`;
  model.type = 'harvesterhci.io.upgrade';
  model.links = { self, update: self };
  model.actions = { dismiss: `${self}?action=dismiss`, cancel: `${self}?action=cancel` };
  return model;
}

const FINISHED = asServed(CAPTURED);
const FAILED = asServed(captured('upgrades', 'upgrade-failed.json'));
const IN_PROGRESS = asServed(captured('upgrades', 'upgrade-in-progress.json'));

const pathOf = (model) => model.links.self;
const given = (interaction, objectState, model, callerState = 'the caller may dismiss upgrades') =>
  interaction
    .given(objectState, { namespace: NAMESPACE, name: model.metadata.name })
    .given(callerState);

// Links and actions are followed as given, so any prefix an Ingress adds
// (the BFF's --base-path) is fine; what follows it is not.
const PREFIX = '(/[A-Za-z0-9._~-]+)*';
const escaped = (model) => pathOf(model).replaceAll('.', '\\.');

function actionLinks(model) {
  const self = new RegExp(`^${PREFIX}${escaped(model)}$`);
  return { self: M.regex(self, pathOf(model)), update: M.regex(self, pathOf(model)) };
}

function actions(model) {
  return {
    dismiss: M.regex(new RegExp(`^${PREFIX}${escaped(model)}\\?action=dismiss$`), model.actions.dismiss),
    cancel: M.regex(new RegExp(`^${PREFIX}${escaped(model)}\\?action=cancel$`), model.actions.cancel),
  };
}

const tab = (mock) => new Session(mock.url, { token: EXAMPLE_TOKEN, csrf: CSRF });
const CHANGED = M.regex(/^(true|false)$/, 'true');

test('reading a finished upgrade: its state, conditions and action URLs', async () => {
  await given(pact.addInteraction(), 'a finished upgrade exists', FINISHED)
    .uponReceiving('a v1.0.5 read of a finished upgrade')
    .withRequest('GET', pathOf(FINISHED), (b) => b.headers(session('GET')))
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody(
        upgradeResource(FINISHED, {
          upgradeState: M.regex(/^(Succeeded|Failed)$/, 'Succeeded'),
          conditions: conditionsIncluding('Completed', 'True'),
          links: actionLinks(FINISHED),
          actions: actions(FINISHED),
        }),
      ),
    )
    .executeTest(async (mock) => {
      const upgrade = await v105.get(tab(mock), pathOf(FINISHED));
      assert.match(upgrade.actions.dismiss, /\?action=dismiss$/);
      assert.match(upgrade.actions.cancel, /\?action=cancel$/);
    });
});

const finishedActions = [
  ['dismiss', 'a finished upgrade exists', FINISHED, 'Succeeded', 'True'],
  ['cancel', 'a finished upgrade exists', FINISHED, 'Succeeded', 'True'],
  ['dismiss', 'a failed upgrade exists', FAILED, 'Failed', 'False'],
];

for (const [action, state, model, upgradeState, completed] of finishedActions) {
  test(`${action} on a ${upgradeState.toLowerCase()} upgrade: 200, read, status kept`, async () => {
    await given(pact.addInteraction(), state, model)
      .uponReceiving(`a v1.0.5 ${action} of a ${upgradeState.toLowerCase()} upgrade`)
      .withRequest('POST', pathOf(model), (b) => b.query({ action }).headers(session('POST')))
      .willRespondWith(200, (b) =>
        b.headers({ 'Content-Type': JSON_TYPE, 'X-Upgrade-Bff-Changed': CHANGED }).jsonBody(
          upgradeResource(model, {
            readMessage: true,
            upgradeState: M.equal(upgradeState),
            conditions: conditionsIncluding('Completed', completed),
            links: actionLinks(model),
            actions: actions(model),
          }),
        ),
      )
      .executeTest(async (mock) => {
        const result = await v105.action(tab(mock), model, action);
        assert.equal(result.read, true);
        assert.equal(result.state, upgradeState);
      });
  });
}

test('cancel on an upgrade in progress: 200, nothing written', async () => {
  await given(pact.addInteraction(), 'an upgrade is in progress', IN_PROGRESS)
    .uponReceiving('a v1.0.5 cancel of an upgrade in progress')
    .withRequest('POST', pathOf(IN_PROGRESS), (b) => b.query({ action: 'cancel' }).headers(session('POST')))
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE, 'X-Upgrade-Bff-Changed': M.equal('false') }).jsonBody(
        upgradeResource(IN_PROGRESS, {
          upgradeState: M.string('UpgradingNodes'),
          conditions: conditionsIncluding('Completed', 'Unknown'),
          links: actionLinks(IN_PROGRESS),
          actions: actions(IN_PROGRESS),
        }),
      ),
    )
    .executeTest(async (mock) => {
      const result = await v105.action(tab(mock), IN_PROGRESS, 'cancel');
      assert.equal(result.changed, false);
      assert.equal(result.read, false);
    });
});

test('dismiss on an upgrade in progress: 409 UpgradeInProgress', async () => {
  await given(pact.addInteraction(), 'an upgrade is in progress', IN_PROGRESS)
    .uponReceiving('a v1.0.5 dismiss of an upgrade in progress')
    .withRequest('POST', pathOf(IN_PROGRESS), (b) => b.query({ action: 'dismiss' }).headers(session('POST')))
    .willRespondWith(409, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE })
        .jsonBody(steveError(409, 'UpgradeInProgress', 'the upgrade is still in progress')),
    )
    .executeTest(async (mock) => {
      const error = await v105.action(tab(mock), IN_PROGRESS, 'dismiss').catch((e) => e);
      assert.ok(error instanceof SteveError, String(error));
      assert.equal(error.code, 'UpgradeInProgress');
    });
});

test("save() of the whole object, status included: 200, read, the server's status", async () => {
  // The captured v1.0.5 body carries the uid and resourceVersion the browser
  // read; the provider state supplies the live ones.
  const body = structuredClone(CAPTURED);
  // Everything the browser read, by type; what the BFF relies on, exactly.
  const expected = M.like({
    ...body,
    apiVersion: M.equal('harvesterhci.io/v1beta1'),
    kind: M.equal('Upgrade'),
    metadata: {
      ...body.metadata,
      name: M.equal(body.metadata.name),
      namespace: M.equal(body.metadata.namespace),
      uid: M.fromProviderState('${uid}', body.metadata.uid),
      resourceVersion: M.fromProviderState('${resourceVersion}', body.metadata.resourceVersion),
      labels: { ...body.metadata.labels, 'harvesterhci.io/read-message': M.equal('true') },
    },
  });
  await given(pact.addInteraction(), 'a finished upgrade exists', FINISHED)
    .uponReceiving('a v1.0.5 save() PUT of the whole object')
    .withRequest('PUT', pathOf(FINISHED), (b) => b.headers(session('PUT', { body: true })).jsonBody(expected))
    .willRespondWith(200, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE, 'X-Upgrade-Bff-Changed': CHANGED }).jsonBody(
        upgradeResource(FINISHED, {
          readMessage: true,
          upgradeState: M.equal('Succeeded'),
          conditions: conditionsIncluding('Completed', 'True'),
          links: actionLinks(FINISHED),
        }),
      ),
    )
    .executeTest(async (mock) => {
      const model = structuredClone(CAPTURED);
      delete model.metadata.labels['harvesterhci.io/read-message'];
      const { upgrade } = await v105.dismissByPut(tab(mock), model, pathOf(FINISHED));
      assert.equal(upgrade.metadata.labels['harvesterhci.io/read-message'], 'true');
    });
});

test('dismiss by a viewer: 403 in Steve\'s error shape', async () => {
  await given(pact.addInteraction(), 'a finished upgrade exists', FINISHED, 'the caller is a viewer')
    .uponReceiving('a v1.0.5 dismiss by a viewer')
    .withRequest('POST', pathOf(FINISHED), (b) => b.query({ action: 'dismiss' }).headers(session('POST')))
    .willRespondWith(403, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody(steveError(403, 'Forbidden', 'refused')),
    )
    .executeTest(async (mock) => {
      const error = await v105.action(tab(mock), FINISHED, 'dismiss').catch((e) => e);
      assert.ok(error instanceof SteveError, String(error));
      assert.equal(error.status, 403);
    });
});

test('reading with an expired session: 401 in Steve\'s error shape', async () => {
  await given(pact.addInteraction(), 'a finished upgrade exists', FINISHED, "the caller's session has expired")
    .uponReceiving('a v1.0.5 read with an expired session')
    .withRequest('GET', pathOf(FINISHED), (b) => b.headers(session('GET')))
    .willRespondWith(401, (b) =>
      b.headers({ 'Content-Type': JSON_TYPE }).jsonBody(steveError(401, 'Unauthorized', 'log in again')),
    )
    .executeTest(async (mock) => {
      const error = await v105.get(tab(mock), pathOf(FINISHED)).catch((e) => e);
      assert.ok(error instanceof SteveError, String(error));
      assert.equal(error.status, 401);
      assert.equal(error.code, 'Unauthorized');
    });
});
