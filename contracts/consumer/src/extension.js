'use strict';
// What the Harvester dashboard extension does when a user dismisses the
// "upgrade finished" message (or cancels the dialog), one function per client
// generation. The consumer tests run these against Pact's mock server, so the
// pacts say what these functions really send and what they really read back.
//
// The shapes follow the captured requests: both generations PUT the whole Steve
// object with the session in the R_SESS cookie and X-API-CSRF equal to the CSRF
// cookie; v1.0.2–v1.0.4 strip the paths Rancher's cleanForSave never saves
// (status among them), v1.0.5 sends the whole object back. v1.0.5 can also use
// the BFF's actions, the URLs in a resource's `actions`.

const http = require('node:http');

const READ_MESSAGE = 'harvesterhci.io/read-message';
const UPGRADE_STATE = 'harvesterhci.io/upgradeState';

// rancher/dashboard: steve-class.js cleanForSave and create-yaml.js's paths never
// saved, as v1.0.2–v1.0.4 apply them to an Upgrade.
const NEVER_SAVED_TOP = ['status', 'links', 'actions'];
const NEVER_SAVED_METADATA = [
  'finalizers',
  'uid',
  'creationTimestamp',
  'generation',
  'managedFields',
  'ownerReferences',
];

// One connection per request (no keep-alive pool): each test talks to a new mock
// server, and a pooled socket to an old one must never carry the next request.
function send(url, method, headers, payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: new Headers(res.headers), text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.end(payload);
  });
}

class SteveError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.type = body && body.type;
  }
}

/** A logged-in dashboard tab: the session cookie, its CSRF twin, the server it talks to. */
class Session {
  constructor(baseUrl, { token, csrf }) {
    this.baseUrl = baseUrl;
    this.token = token;
    this.csrf = csrf;
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json', Cookie: `R_SESS=${this.token}; CSRF=${this.csrf}` };
    if (method !== 'GET') headers['X-API-CSRF'] = this.csrf;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const response = await send(new URL(path, this.baseUrl), method, headers, payload);
    const json = response.text ? JSON.parse(response.text) : undefined;
    if (response.status >= 400) {
      // Every error the dashboard can show is Steve's {type: "error", status, code, message}.
      if (!json || json.type !== 'error' || json.status !== response.status) {
        throw new Error(`HTTP ${response.status} without Steve's error shape`);
      }
      throw new SteveError(response.status, json);
    }
    return { status: response.status, headers: response.headers, body: json };
  }
}

function withReadMessage(model) {
  const copy = structuredClone(model);
  copy.metadata.labels = { ...(copy.metadata.labels || {}), [READ_MESSAGE]: 'true' };
  return copy;
}

/** What the dashboard needs from an answer to a dismiss, whichever way it was sent. */
function dismissed(answer) {
  const obj = answer.body;
  const changed = answer.headers.get('X-Upgrade-Bff-Changed');
  if (changed !== 'true' && changed !== 'false') {
    throw new Error(`X-Upgrade-Bff-Changed is ${changed}`);
  }
  if (obj.metadata.labels[READ_MESSAGE] !== 'true') throw new Error('the message is not marked read');
  if (!obj.status || !Array.isArray(obj.status.conditions) || obj.status.conditions.length === 0) {
    throw new Error('the answer has no status conditions: the upgrade would be re-initialised');
  }
  return { upgrade: obj, changed: changed === 'true' };
}

const v104 = {
  cleanForSave(model) {
    const body = structuredClone(model);
    for (const key of NEVER_SAVED_TOP) delete body[key];
    for (const key of NEVER_SAVED_METADATA) delete body.metadata[key];
    return body;
  },

  /** "Dismiss it": set the label and save() the model to `url` (Steve self link, Rancher's, or the BFF's). */
  async dismiss(session, model, url) {
    const answer = await session.request('PUT', url, v104.cleanForSave(withReadMessage(model)));
    return dismissed(answer);
  },

  /** The header banner: list the upgrades and find the latest one. */
  async latestUpgrade(session, url) {
    const answer = await session.request('GET', url);
    if (answer.body.type !== 'collection') throw new Error('not a Steve collection');
    return answer.body.data.find((u) => u.metadata.labels['harvesterhci.io/latestUpgrade'] === 'true');
  },
};

const v105 = {
  /** Read one upgrade; a v1.0.5 client needs its action URLs. */
  async get(session, url) {
    const { body } = await session.request('GET', url);
    if (!body.actions || !body.actions.dismiss || !body.actions.cancel) {
      throw new Error('the resource has no dismiss/cancel actions');
    }
    return body;
  },

  /** Dismiss or Cancel in the dialog: POST the resource's action URL. */
  async action(session, model, name) {
    const answer = await session.request('POST', model.actions[name]);
    const obj = answer.body;
    const changed = answer.headers.get('X-Upgrade-Bff-Changed');
    if (changed !== 'true' && changed !== 'false') throw new Error(`X-Upgrade-Bff-Changed is ${changed}`);
    if (!obj.status || !Array.isArray(obj.status.conditions)) throw new Error('no status conditions');
    return {
      upgrade: obj,
      changed: changed === 'true',
      read: obj.metadata.labels[READ_MESSAGE] === 'true',
      state: obj.metadata.labels[UPGRADE_STATE],
    };
  },

  /** The captured v1.0.5 save(): the whole object, status included, with the label set. */
  async dismissByPut(session, model, url) {
    const answer = await session.request('PUT', url, withReadMessage(model));
    return dismissed(answer);
  },
};

module.exports = { READ_MESSAGE, UPGRADE_STATE, Session, SteveError, v104, v105 };
