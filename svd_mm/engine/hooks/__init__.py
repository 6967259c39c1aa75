from .save_volume_prediction_hook import SaveVolumePredictionHook

__all__ = ['SaveVolumePredictionHook']
