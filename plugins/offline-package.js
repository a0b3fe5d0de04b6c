'use strict';

// Lets `sls package` run with no AWS account when VIDSIFT_OFFLINE_PACKAGE=1.
//
// With any `layers:` in the service, the framework's AwsCompileLayers plugin calls
// CloudFormation DescribeStacks after compiling each layer, to reuse the S3 key of an
// identical layer from the last deployment. Offline (CI, `make package`, the stack tests)
// that call fails for want of credentials, so this plugin makes the comparison a no-op;
// the template is then the one a first deployment would get. Deploys (variable unset) are
// untouched and keep the reuse. If the framework ever renames the method, packaging fails
// loudly here instead of silently calling AWS.

class OfflinePackage {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:compileLayers': () => this.disableLayerComparison(),
    };
  }

  disableLayerComparison() {
    if (process.env.VIDSIFT_OFFLINE_PACKAGE !== '1') return;
    const compileLayers = this.serverless.pluginManager
      .getPlugins()
      .find((plugin) => typeof plugin.compareWithLastLayer === 'function');
    if (!compileLayers) {
      throw new this.serverless.classes.Error(
        'offline-package: no plugin with compareWithLastLayer(); the framework changed, update plugins/offline-package.js'
      );
    }
    compileLayers.compareWithLastLayer = async () => undefined;
    this.serverless.cli.log('offline-package: not comparing layers with the deployed stack (VIDSIFT_OFFLINE_PACKAGE=1)');
  }
}

module.exports = OfflinePackage;
