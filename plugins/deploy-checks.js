'use strict';

// Refuses a package (and so a deploy) that would fail half-way or break at run time: a stage
// name S3 or SageMaker cannot take, a region without Rekognition or serverless SageMaker, any
// deploy parameter out of its range, alertRules that is not valid JSON rules, a function
// environment over Lambda's 4 KB, or a camerasFile layout with a mistake. The checks are
// vidsift/deploy/checks.py's (standard library only, the deploy machine's python3, or $PYTHON;
// PyYAML for a YAML layout); this plugin hands it what the framework resolved: the stage, the
// region, every parameter (serverless.yml custom.deployChecks) and each function's environment
// (provider's plus its own).
//
// After a deploy, the checked layout (deploy_checks prints it as JSON) is stored where
// track_people reads it: the stage's analytics bucket, contract cameras_key, with the deploy's
// own credentials. Changing it later needs no deploy: `vidsift cameras put`.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const contract = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'vidsift', 'contract.json'), 'utf8')
);

class DeployChecks {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:initialize': () => this.check(),
      'after:deploy:deploy': () => this.storeLayout(),
    };
    this.layoutJson = null;
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
      serviceDir,
      environments,
    };
    const result = spawnSync(process.env.PYTHON || 'python3', ['-m', 'vidsift.deploy.checks'], {
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
    const out = result.stdout.trim();
    this.layoutJson = out ? JSON.stringify(JSON.parse(out).cameras) : null;
  }

  async storeLayout() {
    if (!this.layoutJson) {
      return;
    }
    const service = this.serverless.service;
    const provider = this.serverless.getProvider('aws');
    const account = await provider.getAccountId();
    const bucket = `${service.service}-${service.provider.stage}-${account}-${contract.buckets.analytics}`;
    await provider.request('S3', 'putObject', {
      Bucket: bucket,
      Key: contract.cameras_key,
      Body: this.layoutJson,
      ContentType: 'application/json',
    });
    this.serverless.cli.log(`deploy-checks: camera layout stored in s3://${bucket}/${contract.cameras_key}`);
  }
}

module.exports = DeployChecks;
