import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import { brokerContract, memoryDeployment } from './broker.contract.js';

// In one process every node shares the one in-process broker.
brokerContract('memory', {
  create() {
    const broker = new MemoryBroker();
    return memoryDeployment(() => broker);
  },
});
