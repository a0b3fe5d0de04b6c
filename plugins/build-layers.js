'use strict';

// Builds the Lambda layer zips serverless.yml points at (layers/build/<name>.zip) before
// anything is packaged, when they are missing or older than their pinned requirements,
// so `npx sls deploy` on a fresh clone deploys real layers and never a stale one.
// The work is layers/build.sh's (pip for Lambda's platform, reproducible zips); it is a
// no-op when the zips are up to date. Needs PyPI the first time.

const { spawnSync } = require('child_process');
const path = require('path');

class BuildLayers {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:initialize': () => this.build(),
    };
  }

  build() {
    const serviceDir = this.serverless.serviceDir || process.cwd();
    const result = spawnSync('bash', [path.join(serviceDir, 'layers', 'build.sh'), '--if-stale'], {
      cwd: serviceDir,
      stdio: 'inherit',
    });
    if (result.error || result.status !== 0) {
      throw new this.serverless.classes.Error(
        `layers/build.sh --if-stale failed (${result.error ? result.error.message : `exit ${result.status}`})`
      );
    }
  }
}

module.exports = BuildLayers;
