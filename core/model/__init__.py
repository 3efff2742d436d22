"""Conv2DNet and its dense twin, model files, model choice, inference, live inference and the trust facts of a map."""
