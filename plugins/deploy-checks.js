'use strict';

// Refuses a package (and so a deploy) that would fail half-way or break at run time: a stage
// name S3 or SageMaker cannot take, a region without Rekognition or serverless SageMaker, any
// deploy parameter out of its range, alertRules that is not valid JSON rules, or a function
// environment over Lambda's 4 KB. The checks are vidsift/deploy_checks.py's (standard library
// only, the deploy machine's python3, or $PYTHON); this plugin hands it what the framework
// resolved: the stage, and each function's environment (provider's plus its own).

const { spawnSync } = require('child_process');

class DeployChecks {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:initialize': () => this.check(),
    };
  }

  check() {
    const service = this.serverless.service;
    const serviceDir = this.serverless.serviceDir || process.cwd();
    const shared = service.provider.environment || {};
    const environments = {};
    for (const name of service.getAllFunctions()) {
      environments[name] = { ...shared, ...(service.getFunction(name).environment || {}) };
    }
    // Every deploy parameter (serverless.yml custom.deployChecks: ${param:...} of each), and
    // the region, which must have Rekognition and SageMaker serverless endpoints.
    const params = {};
    for (const [name, value] of Object.entries((service.custom || {}).deployChecks || {})) {
      params[name] = value === undefined || value === null ? '' : String(value);
    }
    const doc = {
      stage: service.provider.stage,
      region: service.provider.region,
      params,
      environments,
    };
    const result = spawnSync(process.env.PYTHON || 'python3', ['-m', 'vidsift.deploy_checks'], {
      cwd: serviceDir,
      env: { ...process.env, PYTHONPATH: serviceDir },
      input: JSON.stringify(doc),
      encoding: 'utf8',
    });
    if (result.error) {
      throw new this.serverless.classes.Error(`deploy-checks: could not run python3 (${result.error.message})`);
    }
    if (result.status !== 0) {
      throw new this.serverless.classes.Error(
        `deploy-checks: refusing to package this stack:\n${result.stderr.trim()}`
      );
    }
  }
}

module.exports = DeployChecks;
