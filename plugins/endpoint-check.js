'use strict';

// After `sls deploy`, and as `npx sls check-endpoint --stage S --region R`: the SageMaker
// endpoint detect_people calls (ENDPOINT_NAME) must be InService in the stack's own region.
// sagemaker/deploy.py once put it in the profile's default region while the stack went where
// --region said; every InvokeEndpoint then failed and, hours later, every frame was given up.
// Uses the framework's AWS provider, so the stack's region and credentials; fails the command
// (non-zero exit) with what to run when the endpoint is missing or not in service.

class EndpointCheck {
  constructor(serverless) {
    this.serverless = serverless;
    this.commands = {
      'check-endpoint': {
        usage: "Check that the person detector's SageMaker endpoint is InService in the stack's region",
        lifecycleEvents: ['check'],
      },
    };
    this.hooks = {
      'after:deploy:deploy': () => this.check(),
      'check-endpoint:check': () => this.check(),
    };
  }

  endpointName() {
    const env = this.serverless.service.provider.environment || {};
    return String(env.ENDPOINT_NAME);
  }

  async check() {
    const provider = this.serverless.getProvider('aws');
    const region = provider.getRegion();
    const stage = provider.getStage();
    const name = this.endpointName();
    const fix = `python sagemaker/deploy.py --stage ${stage} --region ${region} --role <SageMakerExecutionRole ARN>`;
    let status;
    try {
      const answer = await provider.request('SageMaker', 'describeEndpoint', { EndpointName: name });
      status = answer.EndpointStatus;
    } catch (error) {
      const text = String((error && error.message) || error);
      if (/could not find endpoint|ValidationException|not found/i.test(text)) {
        throw new this.serverless.classes.Error(
          `endpoint-check: no SageMaker endpoint ${name} in ${region}, the stack's region: detect_people ` +
            `would fail every frame. Deploy it there (\`${fix}\`), then \`npx sls check-endpoint ` +
            `--stage ${stage} --region ${region}\`. (${text})`
        );
      }
      throw new this.serverless.classes.Error(
        `endpoint-check: could not describe endpoint ${name} in ${region}: ${text}`
      );
    }
    if (status !== 'InService') {
      throw new this.serverless.classes.Error(
        `endpoint-check: endpoint ${name} in ${region} is ${status}, not InService: detect_people's calls ` +
          'fail until it is (see `aws sagemaker describe-endpoint` for why)'
      );
    }
    this.serverless.cli.log(`endpoint-check: ${name} is InService in ${region}`);
  }
}

module.exports = EndpointCheck;
