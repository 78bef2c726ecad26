"""The 2D segmentation toolkit that Stage I (SS(.)), the adaptation network (AN(.)) and the liver model share:
the U-Net and its prediction (`network`), batch augmentation on the training device (`augment`) and batch
samplers with a tumor share and a ground-truth share (`sampling`). What is specific to a stage lives in its
own package: the SSL methods in aslseg/ssl/, the corruptions and synthesis in aslseg/adapt/."""
