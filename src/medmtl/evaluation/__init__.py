"""From a trained run to per-case numbers: predictions and pixel counts (`predict`, the only
module here that imports torch), boundary metrics (`boundary`), the metrics of the papers
(`metrics`) and the prediction files every later stage reads (`predictions`)."""
