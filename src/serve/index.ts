export { PredictionService } from './service';
export type { BatchEvent, ServicePredictOptions, ServiceStats } from './service';
export type { PredictionServiceOptions } from './options';
