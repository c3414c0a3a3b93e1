// Stands in for @shell/plugins/steve/worker/web-worker.{basic,advanced}.js, which
// the dashboard builds with webpack's worker-loader into Web Worker constructors.
// The workers run the store's websocket subscriptions. The harvester store is not
// one that starts them (subscribe.js createWorker: supportedStores), and the runner
// asks find() for no watch, so nothing constructs one; if anything did, this says so.
export default class UnusedWebWorker {
  constructor() {
    throw new Error('the Steve store tried to start a web worker; the save path does not use one');
  }
}
