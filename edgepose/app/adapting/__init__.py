"""``edgepose adapt``: distil the teacher into the fast model on a user's own footage.

A fixed camera sees one scene for months. These modules turn the user's videos / image
sequences into a fine-tuned model in one call (:func:`~edgepose.app.adapting.job.adapt`):

1. **sample** distinct frames (:mod:`edgepose.data.footage`: scene-change aware), and hold
   out the last ``holdout`` fraction of each clip **in time**;
2. **label** them: the bundled person detector finds everyone, the teacher (MoveNet
   Thunder in-process by default, :mod:`edgepose.engines.teacher`) labels each box; resumable
   like ``label``;
3. **fine-tune** the base model (its own weights: a checkpoint, or the ``.pt`` shipped next
   to a bundled ``.onnx``) on the training frames mixed with a replay sample of real
   training data (``replay_ratio`` replay samples per footage sample), with the base
   recipe's augmentations, through the normal trainer (progress bar, ``--resume`` state);
4. **export** ONNX whose metadata records the adaptation (:attr:`ModelMeta.adaptation`:
   footage hashes, teacher, epochs, hold-out), optionally INT8-calibrated on the footage;
5. **report** before / after: agreement with the teacher on the held-out people (PCK@0.05
   / 0.1 of the box's longer side), PCK@0.2 (torso) on a labelled real set to show what was
   forgotten (LSP test where it is found), and batch-1 latency of both files.

Everything lives in a work folder (default ``OUT_adapt/``): rerunning the same command
reuses the sampled frames and labels and resumes training where it stopped.

Modules, each usable alone:

- :mod:`~edgepose.app.adapting.options`  :class:`AdaptOptions` (what the CLI fills) and
  its checks.
- :mod:`~edgepose.app.adapting.base_model`     the model being adapted: weights, ONNX, recipe.
- :mod:`~edgepose.app.adapting.workdir`  the work folder and the fingerprint that guards it.
- :mod:`~edgepose.app.adapting.labels`   detector boxes + teacher keypoints -> COCO (step 2).
- :mod:`~edgepose.app.adapting.training` replay sources and the fine-tuning config (step 3).
- :mod:`~edgepose.app.adapting.publish`   the adaptation record, ONNX (+ INT8) (step 4).
- :mod:`~edgepose.app.adapting.before_after`   before / after agreement, forgetting, latency (5).
- :mod:`~edgepose.app.adapting.job`      the five steps in order.
"""
