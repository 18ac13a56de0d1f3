CKPT_KEY = "ser"  # checkpoint entry holding what predict/evaluate need to rebuild the pipeline; here, below
# the classifier (which writes it) and the pipeline (which reads it), so neither imports the other for it
