// The dashboard's own save path, run in Node: the real @rancher/shell Steve store
// (Vuex 4, its actions, getters and mutations), the extension's real model classes,
// and real HTTP through the shell's own axios. See ../README.md.
//
//   node dist/shell-v1.0.4.cjs --type harvesterhci.io.upgrade \
//     --url https://127.0.0.1:8443/v1/harvesterhci.io.upgrades/harvester-system/x \
//     --header 'Authorization: Bearer TOKEN' --edit dismiss
//
// Prints one JSON object on stdout: what the model's save() sent and what came back.
import { createStore } from 'vuex';
import axios from 'axios';
import steveStoreFactory from '@shell/plugins/steve/index';
import { set as setPath } from '@shell/utils/object';
import { MODELS, VERSION } from './models';

const USAGE = `usage: node shell-<version>.cjs --type TYPE --url ITEM_URL [--header 'Name: value']... [--edit EDIT]...

Does what the dashboard does: GETs the Steve item at ITEM_URL through the shell's
Steve store ('find'), builds the extension's model for TYPE from the answer, applies
each EDIT to it, then calls the model's save(), which PUTs to the item's links.update
(or links.self), wherever that points.

  --type TYPE       Steve type, one of: ${ Object.keys(MODELS).join(', ') }
  --url ITEM_URL    absolute URL of the Steve item (http or https; TLS is not verified,
                    as the shell's own store does not verify it either)
  --header H        a request header for every request, e.g. 'Authorization: Bearer T'
                    or 'Cookie: R_SESS=...' (repeatable)
  --edit EDIT       what the user does before save(), in order (repeatable):
                      dismiss               "Dismiss it" (Upgrade): setLabel(read-message, 'true')
                      label:KEY=VALUE       setLabel(KEY, VALUE), as the labels editor does
                      annotation:KEY=VALUE  setAnnotation(KEY, VALUE), as the annotations editor
                                            and the description field do
                      set:PATH=JSON         set a field by path, as a form field's v-model does
                                            (e.g. set:spec.suspend=true)
                      action:NAME           call the model's own action method, which saves
                                            itself (e.g. action:resumeSchedule, the
                                            ScheduleVMBackup "Resume" menu entry)
                    with no action edit, save() is called after the edits; with no
                    --edit at all, save() sends the object as loaded

Extension version of this bundle: ${ VERSION }`;

const DISMISS_LABEL = 'harvesterhci.io/read-message';

function fail(message) {
  process.stderr.write(`error: ${ message }\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = { headers: {}, edits: [] };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];

    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${ USAGE }\n`);
      process.exit(0);
    }
    const value = argv[i + 1];

    if (!['--type', '--url', '--header', '--edit'].includes(arg)) {
      fail(`unknown argument ${ JSON.stringify(arg) } (see --help)`);
    }
    if (value === undefined) {
      fail(`${ arg } needs a value`);
    }
    i++;
    if (arg === '--type') {
      out.type = value;
    } else if (arg === '--url') {
      out.url = value;
    } else if (arg === '--header') {
      const colon = value.indexOf(':');

      if (colon <= 0) {
        fail(`--header ${ JSON.stringify(value) } is not 'Name: value'`);
      }
      out.headers[value.slice(0, colon).trim()] = value.slice(colon + 1).trim();
    } else {
      out.edits.push(parseEdit(value));
    }
  }
  if (!out.type || !MODELS[out.type]) {
    fail(`--type must be one of ${ Object.keys(MODELS).join(', ') }`);
  }
  if (!out.url || !/^https?:\/\//.test(out.url)) {
    fail('--url must be an absolute http(s) URL of a Steve item');
  }

  return out;
}

function parseEdit(text) {
  if (text === 'dismiss') {
    return { kind: 'dismiss' };
  }
  const action = /^action:([A-Za-z]+)$/.exec(text);

  if (action) {
    return { kind: 'action', name: action[1] };
  }
  const m = /^(label|annotation|set):([^=]+)=(.*)$/s.exec(text);

  if (!m) {
    fail(`--edit ${ JSON.stringify(text) } is not dismiss, label:K=V, annotation:K=V or set:PATH=JSON`);
  }
  if (m[1] === 'set') {
    try {
      return { kind: 'set', path: m[2], value: JSON.parse(m[3]) };
    } catch (e) {
      fail(`--edit ${ JSON.stringify(text) }: the value is not JSON`);
    }
  }

  return { kind: m[1], key: m[2], value: m[3] };
}

// The parts of the dashboard's root store that the Steve store module reads on
// this path. None of them touches a request body: see ../README.md.
function rootModule() {
  return {
    state: () => ({
      // What the shell's plugin loader answers for the extension's models: the
      // dashboard registers each file of pkg/harvester/models/ under its file name.
      $plugin: {
        getDynamic(kind, name) {
          if (kind === 'models' && MODELS[name]) {
            return () => MODELS[name];
          }

          return undefined;
        },
        // The extension's own form validators (pkg/harvester/validators/, e.g. the
        // IPPool's 'ranges') are not vendored. A validator only adds error messages,
        // which make save() refuse; it never changes the body. Without it the shell
        // warns and goes on, so an object those validators would refuse is still
        // sent: give this runner valid objects.
        getValidator() {
          return undefined;
        },
      }
    }),
    getters: {
      'auth/fromHeader':    () => undefined,
      'type-map/optionsFor': () => () => ({}),
      'prefs/get':          () => () => undefined,
      'i18n/t':             () => (key) => key,
      'i18n/exists':        () => () => false,
      // The management store's settings (ui-performance, read when the store
      // indexes what a save answered): none, so the shell's defaults apply.
      'management/byId':    () => () => undefined,
      currentProduct:       () => undefined,
      productId:            () => 'harvester',
      clusterId:            () => 'local',
    },
    actions: {
      // The dashboard logs out on a 401 and shows growls; here the caller sees the status.
      'auth/logout':   () => {},
      'auth/gotHeader': () => {},
      'growl/error':   () => {},
      'growl/fromError': () => {},
    },
  };
}

// The store's find() takes the item's Steve id: what follows the collection's
// segment (the type, pluralised) in a Steve item URL, e.g. ns/name.
function steveId(url, type) {
  const parts = new URL(url).pathname.split('/').filter(Boolean);
  const at = parts.findIndex((p) => p.startsWith(type));

  if (at < 0 || at === parts.length - 1) {
    fail(`--url ${ url } is not a Steve item URL of ${ type } (/v1/<type>s/[namespace/]name)`);
  }

  return parts.slice(at + 1).map(decodeURIComponent).join('/');
}

async function main() {
  // The shell logs its progress with console.log ("Find: [harvester] ..."); stdout
  // carries only the result line.
  console.log = console.info = console.debug = (...a) => console.error(...a);
  const args = parseArgs(process.argv.slice(2));
  const exchanges = [];
  // Relative links (as bff/steve.py renders them) resolve against the item's
  // origin, as a browser resolves them against the dashboard's page.
  const http = axios.create({ baseURL: new URL(args.url).origin, headers: args.headers });

  // Record each request exactly as it went on the wire (config.data is the
  // serialised body after axios' own transformRequest).
  const record = (res) => {
    exchanges.push({
      method:  res.config.method.toUpperCase(),
      // Absolute, as sent: a relative link is resolved against baseURL.
      url:     new URL(res.config.url, res.config.baseURL).href,
      body:    typeof res.config.data === 'string' ? JSON.parse(res.config.data) : (res.config.data ?? null),
      status:  res.status,
      response: res.data,
    });

    return res;
  };

  http.interceptors.response.use(record, (err) => {
    if (err?.response) {
      record(err.response);
    }

    return Promise.reject(err);
  });

  const store = createStore({ ...rootModule(), strict: false });

  store.$axios = http;
  store.$config = { rancherEnv: 'web' };
  steveStoreFactory({
    namespace:      'harvester',
    baseUrl:        new URL(args.url).origin,
    modelBaseClass: 'byType',
    supportsStream: false,
  })(store);

  const ns = 'harvester';
  const id = steveId(args.url, args.type);
  let model = null;

  try {
    model = await store.dispatch(`${ ns }/find`, {
      type: args.type,
      id,
      opt:  { url: args.url, force: true, watch: false },
    });
  } catch (e) {
    // A failed GET: reported below with its status.
  }

  if (!model) {
    const got = exchanges[exchanges.length - 1];

    process.stdout.write(`${ JSON.stringify({ phase: 'find', status: got?.status ?? null, response: got?.response ?? null }) }\n`);
    process.exit(1);
  }
  if (!(model instanceof MODELS[args.type].default)) {
    fail(`the store built a ${ model?.constructor?.name } for ${ args.type }, not the extension's model`);
  }

  const loaded = exchanges.length;
  let error = null;
  let saved = false;

  for (const edit of args.edits) {
    if (edit.kind === 'action') {
      if (typeof model[edit.name] !== 'function') {
        fail(`the ${ model.constructor.name } model has no action ${ edit.name }`);
      }
      // The model's action catches its own save error and reports it as a growl.
      await model[edit.name]();
      saved = true;
    } else if (edit.kind === 'dismiss') {
      // components/HarvesterUpgradeHeader.vue, ignoreMessage(): the same two calls.
      model.setLabel(DISMISS_LABEL, 'true');
    } else if (edit.kind === 'label') {
      model.setLabel(edit.key, edit.value);
    } else if (edit.kind === 'annotation') {
      model.setAnnotation(edit.key, edit.value);
    } else {
      setPath(model, edit.path, edit.value);
    }
  }

  if (!saved) {
    try {
      await model.save();
    } catch (e) {
      // A rejected request carries its status (reported below); anything else,
      // e.g. the model's own validation errors, is the code refusing to save.
      error = e?._status ? null : (Array.isArray(e) ? e.join('; ') : String(e?.message || e));
    }
  }
  const put = exchanges.slice(loaded).find((x) => x.method !== 'GET') || null;

  process.stdout.write(`${ JSON.stringify({
    version:  VERSION,
    type:     args.type,
    model:    model.constructor.name,
    request:  put && { method: put.method, url: put.url, body: put.body },
    status:   put ? put.status : null,
    response: put ? put.response : null,
    error,
  }) }\n`);
  process.exit(put && !error ? 0 : 1);
}

main().catch((e) => {
  process.stderr.write(`error: ${ e?.stack || e }\n`);
  process.exit(1);
});
