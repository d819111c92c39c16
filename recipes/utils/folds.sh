# shellcheck shell=bash disable=SC2154  # the template's variables (folds, exp, sys_names, ...)
# folds.sh: cross-validation for recipes/TEMPLATE/asc.sh (--folds K1,K2,...), sourced by it
# after the options and the systems are known. See docs/recipes.md, "Cross-validation".
#
# run_folds: runs the recipe ("$0" with its own arguments, recipe_args) once per fold with
#   --setup foldK --data-dir DATA_DIR/foldK --exp EXP/foldK (and --fold K for a layout
#   without evaluation_setup/, read by asctool prepare --fold K), then, in the results
#   stage, combines the folds' score reports with asctool results --folds (mean ± std)
#   into EXP/RESULTS.md and prints it.

run_folds() {  # --folds: every stage once per fold (this recipe again), then mean ± std of the folds' reports
  local k i fold_list rows=() per_fold results_at=-1
  IFS=, read -ra fold_list <<<"$folds"
  [ ${#fold_list[@]} -gt 0 ] || die_usage "--folds: expected comma-separated fold names like 1,2,3"
  for k in "${fold_list[@]}"; do
    [[ $k =~ ^[A-Za-z0-9_-]+$ ]] || die_usage "--folds: '$k' is not a fold name (letters, digits, _, -)"
  done
  [ -z "$fold" ] || die_usage "--fold and --folds: give one"
  mkdir -p "$exp/log"
  printf '%s  %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$invocation" >>"$exp/invocation.txt"
  log "$invocation"
  for k in "${fold_list[@]}"; do
    per_fold=(--folds "" --setup "fold$k" --data-dir "$data_dir/fold$k" --exp "$exp/fold$k")
    # a layout with split files per setup (TAU's evaluation_setup/foldK_*.csv, the demo data) is
    # read by --setup foldK; any other (a metadata CSV with a fold column) by prepare --fold K
    if [ "$synthesize" != true ] && [ ! -d "$data_root/evaluation_setup" ]; then per_fold+=(--fold "$k"); fi
    log "Fold $k of ${#fold_list[@]}: $0 ${per_fold[*]}"
    if ! bash "$0" "${recipe_args[@]}" "${per_fold[@]}"; then
      log "FAILED in fold $k after $(elapsed "$start_time"). Fix the cause and rerun the same command: finished steps of every fold are skipped."
      exit 1
    fi
  done
  for i in "${!stage_list[@]}"; do
    if [ "${stage_list[$i]}" = results ]; then results_at=$i; fi
  done
  if [ "$results_at" -ge 0 ] && run_stage "$results_at" "mean ± std over folds $folds in $exp/RESULTS.md"; then
    for i in "${!sys_names[@]}"; do
      rows+=("${sys_names[$i]/\//-}=$exp/fold{fold}/${sys_reports[$i]#"$exp/"}")
    done
    asctool results --folds "$folds" --out "$exp/RESULTS.md" \
      --title "$title, cross-validation over folds $folds, profile $profile" "${rows[@]}" --force \
      >"$exp/log/results.log"
    cat "$exp/RESULTS.md"
  fi
  log "Done in $(elapsed "$start_time")."
}
