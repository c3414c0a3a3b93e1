// The extension's model files, by the Steve type they are registered under (the
// dashboard registers pkg/harvester/models/<file>.js as type <file>). Which tag's
// files these are is decided by the bundle's '@pkg/harvester' alias (build.mjs).
import * as harvesterhciUpgrade from '@pkg/harvester/models/harvesterhci.io.upgrade';
import * as harvesterhciSetting from '@pkg/harvester/models/harvesterhci.io.setting';
import * as harvesterhciKeypair from '@pkg/harvester/models/harvesterhci.io.keypair';
import * as harvesterhciScheduleVMBackup from '@pkg/harvester/models/harvesterhci.io.schedulevmbackup';
import * as ippool from '@pkg/harvester/models/loadbalancer.harvesterhci.io.ippool';
import * as loadbalancer from '@pkg/harvester/models/loadbalancer.harvesterhci.io.loadbalancer';
import * as clusternetwork from '@pkg/harvester/models/network.harvesterhci.io.clusternetwork';

export const VERSION = process.env.EXTENSION_VERSION;

export const MODELS = {
  'harvesterhci.io.upgrade':                 harvesterhciUpgrade,
  'harvesterhci.io.setting':                 harvesterhciSetting,
  'harvesterhci.io.keypair':                 harvesterhciKeypair,
  'harvesterhci.io.schedulevmbackup':        harvesterhciScheduleVMBackup,
  'loadbalancer.harvesterhci.io.ippool':     ippool,
  'loadbalancer.harvesterhci.io.loadbalancer': loadbalancer,
  'network.harvesterhci.io.clusternetwork':  clusternetwork,
};
